"""The stream plugin, loaded into the target's pytest with `-p orchestrate_stream`."""
