"""Data: named datasets (Fashion-MNIST, MNIST, CIFAR-10) and folders of images, split and decoded as uint8 pixels.

Image folders are decoded with the device's own code (edge_runtime.images) and streamed from disk when large."""
