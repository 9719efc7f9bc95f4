"""What the supervisor and the host process agree on. Light: importing it loads no llama.cpp."""

TOKEN_ENV = "EMBER_HOST_TOKEN"  # the per-launch bearer token travels in the environment, never in argv
RENDER_DEADLINE_S = 2.0  # a chat template render longer than this ends the host
TEMPLATE_TIMEOUT_EXIT = 3  # the host's exit code when that happens
