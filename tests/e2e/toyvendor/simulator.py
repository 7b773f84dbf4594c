"""Toy vendor simulator: written from the toy API alone, sharing no code with its provider."""

from __future__ import annotations

from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from reconciler.sandbox.base import Simulator

KEY = "sandbox-toy-key"


class ToySimulator(Simulator):
    name = "toyvendor"
    seed_resource = "toy.yaml"
    environment: ClassVar[dict[str, str]] = {"key_env": KEY}

    def initial_state(self, seed: dict[str, Any]) -> dict[str, Any]:
        return {"licenses": {row["id"]: {"capacity": row["capacity"],
                                         "holders": list(row["holders"])}
                             for row in seed["licenses"]}}

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/licenses", self.list_licenses, methods=["GET"]),
            Route("/licenses/{license}/holders/{robot}", self.change, methods=["PUT", "DELETE"]),
        ]

    def _denied(self, request: Request) -> JSONResponse | None:
        if request.headers.get("X-Key") != KEY:
            return JSONResponse({"error": "bad key"}, status_code=401)
        return None

    async def list_licenses(self, request: Request) -> JSONResponse:
        denied = self._denied(request)
        if denied is not None:
            return denied
        rows = [{"id": name, "capacity": row["capacity"], "holders": sorted(row["holders"])}
                for name, row in sorted(self.state["licenses"].items())]
        return JSONResponse({"licenses": rows})

    async def change(self, request: Request) -> JSONResponse:
        denied = self._denied(request)
        if denied is not None:
            return denied
        row = self.state["licenses"].get(request.path_params["license"])
        if row is None:
            return JSONResponse({"error": "no such license"}, status_code=404)
        robot = request.path_params["robot"]
        if request.method == "PUT" and robot not in row["holders"]:
            if len(row["holders"]) >= row["capacity"]:
                return JSONResponse({"error": "full"}, status_code=409)
            row["holders"].append(robot)
        if request.method == "DELETE" and robot in row["holders"]:
            row["holders"].remove(robot)
        self.save()
        return JSONResponse({"ok": True})
