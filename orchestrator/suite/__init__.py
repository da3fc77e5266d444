"""Running the target's suite: its command and configuration (config.py), pytest driven through a
stdlib-only stream plugin (runner.py, plugin/), JUnit reports (junit.py), and the containers the
suite depends on (docker.py)."""
