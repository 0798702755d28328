"""Slack integration: the Web API client, Block Kit rendering, request verification and the bot's handlers."""
