"""What the user attached to a message, used without the LLM: a voice message becomes words of
the request (Whisper), a picture becomes an image search. A file that cannot be used costs
itself only and says why in a notice."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tools.audio import load_audio
from tools.config import IndexSettings
from tools.errors import MediaError
from tools.factory import Models

PICTURES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".svg", ".svgz"})
SOUNDS = frozenset({".wav", ".mp3", ".ogg", ".oga", ".flac", ".m4a", ".opus", ".webm"})
MAX_HEARD_CHARS = 500  # of a voice message, as request text


@dataclass
class Attached:
    """A message's attachments, read: the words heard and the pictures to search by."""

    heard: list[str] = field(default_factory=list)
    pictures: list[Path] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def message(self, typed: str, default: str) -> str:
        """The request's text: what was typed, then what was heard (else ``default``)."""
        text = " ".join(part for part in (typed.strip(), *self.heard) if part)
        return text or default


def read_attachments(
    attachments: dict[str, Path], models: Models, limits: IndexSettings
) -> Attached:
    """Transcribe voice attachments and keep pictures for image search."""
    out = Attached()
    for name, path in attachments.items():
        suffix = path.suffix.lower()
        if suffix in PICTURES:
            out.pictures.append(path)
        elif suffix in SOUNDS:
            try:
                audio = load_audio(path, limits.max_audio_bytes, limits.max_audio_seconds)
                text = models.transcriber.transcribe(audio).text.strip()
            except MediaError as exc:
                out.notices.append(f"The attached sound {name} cannot be used: {exc}")
                continue
            if text:
                out.heard.append(text[:MAX_HEARD_CHARS])
                out.notices.append(f"Heard in {name}: “{text[:MAX_HEARD_CHARS]}”")
            else:
                out.notices.append(f"No speech was found in {name}.")
        else:
            out.notices.append(
                f"The attachment {name} is neither a picture nor a sound this recommender reads "
                f"({', '.join(sorted(PICTURES | SOUNDS))})."
            )
    return out
