"""The ground floor: what every package stands on (settings machinery, the MQTT client builder, principals, signed links, validation, migrations, local servers); imports no domain package."""
