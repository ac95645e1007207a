//! Typed client for the Cloud BOT REST API (api.c-bot.pro).
