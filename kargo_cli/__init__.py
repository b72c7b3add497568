"""`kargo`: Kargo's command line, for people at a terminal and for CI pipelines.

An HTTP client of the JSON API (/api/v1) and nothing else: it imports neither the Flask
application nor its services (tests/test_architecture.py checks that it uses only the
standard library and Click), so it runs anywhere Python does, against any Kargo server.
"""
