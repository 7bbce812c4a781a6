"""`kubectl readiness dashboard`: a read-only web UI on 127.0.0.1 with the caller's own identity.

Pages (server-rendered with Jinja2 on aiohttp, live by polling a fragment): releases across namespaces, one
release, a checklist. `views` builds what they show (pure), `reader` reads with the caller's client, `server`
serves and guards (Host header, token, read-only methods, CSP), `command` is the plugin's command. Importing this
package imports neither aiohttp nor Jinja2: the plugin's other commands stay quick to start.
"""
