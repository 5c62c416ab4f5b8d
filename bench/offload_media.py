"""The benchmark's image, offloaded by agno 3.1.10 itself (run in AgentOS's venv, like
agentos_server.py: agno is not among our own dependencies): agno's LocalMediaStorage writes the
file and its .meta.json sidecar into MEDIA_DIR, and agno's own offload builds the reference that a
run stores in place of the bytes. Prints the image as a run holds it (Image.to_dict(), with its
media_reference), one line of JSON, for seed.py to put into that session's run.

Usage: offload_media.py MEDIA_DIR SESSION_ID
"""

import json
import random
import sys
import uuid

from agno.media import Image
from agno.media.storage.local import LocalMediaStorage
from agno.utils.media_offload import _offload_single_media

SIZE = 1_000_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def main() -> None:
    directory, session_id = sys.argv[1], sys.argv[2]
    # The same bytes and id on every run, so the same storage key (agno makes it of the session,
    # the id and the content's hash): a PNG signature, then noise that no server can compress.
    content = PNG_SIGNATURE + random.Random(7).randbytes(SIZE - len(PNG_SIGNATURE))
    media_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "agentos-sessions/bench/image"))
    image = Image(id=media_id, content=content, mime_type="image/png")
    # What agno does to each image of a run before it persists the run, when the agent has a
    # media_storage: upload the bytes, attach a MediaReference (bucket: the directory, resolved),
    # drop the content.
    _offload_single_media(image, LocalMediaStorage(base_path=directory), session_id, "image")
    if image.media_reference is None:
        sys.exit("offload_media: agno did not offload the image")
    print(json.dumps(image.to_dict()))


if __name__ == "__main__":
    main()
