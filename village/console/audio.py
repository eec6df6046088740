"""Audio files uploaded with a broadcast: kept in the database by their SHA-256 and served
to the speakers from the console's origin (a speaker plays a URL; it cannot sign in)."""

from __future__ import annotations

import hashlib

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ground.principal import Principal
from village.api import audit
from village.console import web

router = APIRouter(prefix=web.PREFIX, include_in_schema=False)
MAX_AUDIO_BYTES = 20 * 1024 * 1024
# What speakers play, by the file's extension.
AUDIO_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "ogg": "audio/ogg", "aac": "audio/aac",
               "m4a": "audio/mp4"}


class AudioRefused(ValueError):
    """An upload that is not a playable audio file of a sane size."""


def file_type(filename: str, content: bytes) -> str:
    """The served extension of an upload; AudioRefused if it is not one we serve."""
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if extension not in AUDIO_TYPES:
        raise AudioRefused(f"audio files are {', '.join(sorted(AUDIO_TYPES))}")
    if not content:
        raise AudioRefused("the audio file is empty")
    if len(content) > MAX_AUDIO_BYTES:
        raise AudioRefused(f"an audio file is at most {MAX_AUDIO_BYTES // (1024 * 1024)} MB")
    return extension


def store_audio(conn: psycopg.Connection, actor: Principal, filename: str, content: bytes) -> str:
    """Keep an upload (once per content) and return its file name: `<sha256>.<extension>`."""
    extension = file_type(filename, content)
    digest = hashlib.sha256(content).hexdigest()
    conn.execute("INSERT INTO console_audio (sha256, content_type, content, uploaded_by)"
                 " VALUES (%s, %s, %s, %s) ON CONFLICT (sha256) DO NOTHING",
                 (digest, AUDIO_TYPES[extension], content, actor.name))
    audit.record(conn, actor, "audio.upload", f"audio:{digest}", None,
                 {"file": filename, "bytes": len(content)})
    return f"{digest}.{extension}"


def audio_url(request: Request, name: str) -> str:
    """Where speakers fetch an upload: the configured public address, else this request's."""
    base = web.console_settings(request).public_url or str(request.base_url).rstrip("/")
    return f"{base}{web.PREFIX}/audio/{name}"


@router.get("/audio/{name}")
def serve_audio(request: Request, name: str) -> Response:
    """An uploaded audio file, for the speakers."""
    digest = name.split(".", 1)[0]
    with request.app.state.pool.connection() as conn:
        row = conn.execute("SELECT content_type, content FROM console_audio WHERE sha256 = %s",
                           (digest,)).fetchone()
    if row is None:
        return Response(status_code=404)
    return Response(bytes(row[1]), media_type=row[0],
                    headers={"cache-control": "public, max-age=31536000, immutable"})
