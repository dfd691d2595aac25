"""Tools for people: `wsrelay connect` (an interactive client) and `wsrelay bench` (load).

Both talk to any WebSocket server through aiohttp's client, not through wsrelay's own
`service.websocket` API, so they stay independent of the service they test.
"""
