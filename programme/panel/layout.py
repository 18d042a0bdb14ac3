"""The page shell: one small inline stylesheet, readable on a low-end phone, nothing fetched from elsewhere."""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode

STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b;background:#fafafa;font-size:16px}
header{background:#0b5563;color:#fff;padding:.6rem 1rem}header a{color:#fff;margin-right:1rem}
main{padding:.5rem 1rem;max-width:60rem}h1{font-size:1.3rem}h2{font-size:1.1rem;margin-top:1.4rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border-bottom:1px solid #ddd;padding:.35rem;
text-align:left;vertical-align:top}th{background:#eef3f4}td.n{text-align:right}
.r{display:inline-block;background:#fde8d7;border-radius:.3rem;padding:.05rem .35rem;margin:.1rem 0;font-size:.9rem}
form{margin:.5rem 0}label{margin-right:.6rem}input,select,button{font-size:1rem;padding:.3rem}
svg{max-width:100%;height:auto;background:#fff}.muted{color:#666;font-size:.9rem}
"""


def e(value: object) -> str:
    return escape(str(value), quote=True)


def href(path: str, **params: str | None) -> str:
    query = urlencode({k: v for k, v in params.items() if v})
    return e(f"{path}?{query}" if query else path)


def page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="es"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)} · Puente</title><style>{STYLE}</style></head><body>"
        '<header><a href="/panel/">Inicio</a><a href="/panel/salir">Salir</a></header>'
        f"<main><h1>{e(title)}</h1>{body}</main></body></html>"
    )
