"""Voice: speak a prompt, hear the reply, and time every stage of the turn.

Nothing here is imported on the app's start-up path, and no module in this package imports numpy,
sounddevice, faster-whisper or pyttsx3 at import time: they load inside the functions that need
them, so the app starts as fast as before and still runs, typed and silent, when any is missing.
"""
