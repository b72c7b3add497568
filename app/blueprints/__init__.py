"""HTML blueprints and the JSON API: thin layers that validate input, call a service, render."""
