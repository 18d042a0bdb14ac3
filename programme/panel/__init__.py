"""The supervisors' dashboard (/panel/): server-rendered Spanish HTML, no script, no CDN, a few KB a page.

`pages` turns what `programme` computes into HTML; `charts` draws the WHO growth curves as SVG from the
LMS tables in `clinical/`. The HTTP side (sign-in with OAuth + PKCE, the session cookie) is api/panel.py.
"""
