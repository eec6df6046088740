"""The spine: settings, database access, migrations, the command line and the HTTP API."""
