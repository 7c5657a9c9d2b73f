"""Cloud adapters (Google Cloud): imported only when the settings select them, so the embedded
default never imports a google.cloud library."""
