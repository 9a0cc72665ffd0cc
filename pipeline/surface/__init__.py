"""The surface people call: every option declared once (options), parsed into stage configs (stage_configs), the Python
functions (api) and the model-folder handle (handle) on top, and the command line (cli) on top of those."""
