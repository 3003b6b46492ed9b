"""The web dashboard at /ui/: server-rendered pages (Jinja2 templates), their view
models, the login session and CSRF tokens. Above the API layer: it renders what
core's services and the rooms answer, through the same access step as every family."""
