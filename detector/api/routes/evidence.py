"""``GET /api/v1/alerts/{alert_id}/evidence/{name}``: one evidence file of an alert (bytes)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from detector.api.deps import Ctx

router = APIRouter(prefix="/api/v1", tags=["evidence"])


@router.get("/alerts/{alert_id}/evidence/{name}", summary="An evidence file (SigMF snippet, WAV audio)",
            response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}, "audio/wav": {}},
                             "description": "the file; `X-Content-SHA256` carries its SHA-256",
                             "headers": {"X-Content-SHA256": {"schema": {"type": "string"}}}},
                       404: {"description": "no such alert or evidence file"}})
def evidence(alert_id: str, name: str, ctx: Ctx) -> Response:
    got = ctx.store.evidence(alert_id, name)
    if got is None:
        raise HTTPException(404, f"no evidence {name!r} for alert {alert_id!r}")
    data, info = got
    return Response(content=data, media_type=info.media_type if hasattr(info, "media_type") else info["media_type"],
                    headers={"X-Content-SHA256": info.sha256 if hasattr(info, "sha256") else info["sha256"],
                             "Content-Disposition": f'attachment; filename="{name}"'})
