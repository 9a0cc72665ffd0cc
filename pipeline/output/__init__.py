"""What people read: results as tables (tables), shown on a rich console or in Jupyter (display), and figures
(plots)."""
