"""REST API of the audit trail: signed checkpoints, Merkle proofs, the public key.

Auditors and model services may read it. Hashes are lowercase hex; a checkpoint's `note` is
the full C2SP signed note, which anyone holding the public key can check offline.
"""

from __future__ import annotations

import re

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import keys, merkle, publish, selectors, services
from audit.models import Alert, Checkpoint, Cosignature
from audit.tree import StoredTree, sealed_size
from core import roles as r
from core.api_schema import error
from core.errors import ApplicationError, invalid
from core.pagination import CursorPagination
from core.permissions import role_permission

READERS = (r.AUDITOR, r.MODEL_SERVICE)
NO_CHECKPOINT = "No checkpoint has been signed yet (and no `size` was given)."
NOT_SEALED = "The size asked for is beyond the sealed log; the next checkpoint seals it."


class CosignatureOut(serializers.ModelSerializer):
    class Meta:
        model = Cosignature
        fields = ["witness", "key_id", "signed_at", "line", "received_at"]


class CheckpointOut(serializers.ModelSerializer):
    size = serializers.IntegerField(source="tree_size")
    cosignatures = CosignatureOut(many=True, help_text="witnesses' cosignature/v1 lines")
    cosigned_note = serializers.SerializerMethodField(
        help_text="the signed note with the witnesses' cosignature lines appended"
    )

    class Meta:
        model = Checkpoint
        fields = [
            "size", "root", "origin", "key_id", "note", "created_at", "cosignatures",
            "cosigned_note",
        ]  # fmt: skip

    def get_cosigned_note(self, checkpoint: Checkpoint) -> str:
        return publish.cosigned_note(checkpoint)


class PublicKeyOut(serializers.Serializer):
    origin = serializers.CharField(help_text="the origin line of this log's checkpoints")
    key_name = serializers.CharField(help_text="the key's own name; signs only if = origin")
    warning = serializers.CharField(
        required=False, help_text="present when the key's name is not the origin"
    )
    key_id = serializers.CharField(help_text="4-byte C2SP key id, hex")
    public_key = serializers.CharField(help_text="base64 of the raw 32-byte Ed25519 key")
    vkey = serializers.CharField(help_text="the C2SP verifier-key string")


class InclusionOut(serializers.Serializer):
    seq = serializers.IntegerField()
    leaf_index = serializers.IntegerField()
    tree_size = serializers.IntegerField()
    leaf_hash = serializers.CharField()
    root = serializers.CharField()
    proof = serializers.ListField(child=serializers.CharField())


class ConsistencyOut(serializers.Serializer):
    to = serializers.IntegerField()
    old_root = serializers.CharField()
    new_root = serializers.CharField()
    proof = serializers.ListField(child=serializers.CharField())

    def get_fields(self) -> dict:
        # "from" is a Python keyword: it cannot be a class attribute.
        return {"from": serializers.IntegerField(), **super().get_fields()}


class ProofEventOut(serializers.Serializer):
    seq = serializers.IntegerField()
    canonical = serializers.CharField(help_text="the event's canonical JSON text")
    leaf_hash = serializers.CharField()
    leaf_index = serializers.IntegerField()
    proof = serializers.ListField(child=serializers.CharField(), allow_null=True)


class ProofCheckpointOut(serializers.Serializer):
    size = serializers.IntegerField()
    root = serializers.CharField()
    note = serializers.CharField()


class DecisionProofOut(serializers.Serializer):
    checkpoint = ProofCheckpointOut(allow_null=True)
    events = ProofEventOut(many=True)
    staged = serializers.IntegerField(
        help_text="the object's events recorded but not sealed into the log yet (seconds at "
        "most, normally): fetch the proof again to have them"
    )


class PublicKeyApi(APIView):
    """The checkpoint public key: raw Ed25519 key (base64) and the C2SP verifier-key string."""

    permission_classes = [role_permission(*READERS)]

    @extend_schema(responses={200: PublicKeyOut, 503: error("No signing key is configured.")})
    def get(self, request: Request) -> Response:
        return Response(PublicKeyOut(keys.public_key()).data)


class LatestCheckpointApi(APIView):
    permission_classes = [role_permission(*READERS)]

    @extend_schema(responses={200: CheckpointOut, 404: error(NO_CHECKPOINT)})
    def get(self, request: Request) -> Response:
        checkpoint = _checkpoints().order_by("-tree_size").first()
        if checkpoint is None:
            raise ApplicationError(
                "No checkpoint has been signed yet.", code="not_found", status=404
            )
        return Response(CheckpointOut(checkpoint).data)


def _checkpoints():
    return Checkpoint.objects.prefetch_related("cosignatures")


class CosignatureCreateApi(APIView):
    """A witness gives its cosignature of a checkpoint (`python -m audit.witness check
    --submit`): one C2SP cosignature/v1 line, kept when it verifies under a witness key this
    log knows (AUDIT_WITNESS_KEYS)."""

    permission_classes = [role_permission(*READERS)]

    class CosignatureIn(serializers.Serializer):
        cosignature = serializers.CharField(
            max_length=1000, help_text='the signature line, "— <witness name> <base64>"'
        )

    @extend_schema(
        request=CosignatureIn,
        responses={201: CosignatureOut, 404: error("No checkpoint of that size.")},
    )
    def post(self, request: Request, size: int) -> Response:
        checkpoint = Checkpoint.objects.filter(tree_size=size).first()
        if checkpoint is None:
            raise ApplicationError(f"No checkpoint of size {size}.", code="not_found", status=404)
        data = self.CosignatureIn(data=request.data)
        data.is_valid(raise_exception=True)
        line = data.validated_data["cosignature"].strip() + "\n"
        kept = publish.cosignature_keep(checkpoint=checkpoint, line=line)
        if isinstance(kept, str):
            raise invalid({"cosignature": [kept]})
        return Response(CosignatureOut(kept).data, status=201)


class CheckpointListApi(APIView):
    """Every signed checkpoint, newest first (cursor-paginated)."""

    permission_classes = [role_permission(*READERS)]

    class Pagination(CursorPagination):
        ordering = "-tree_size"
        page_size = 100

    @extend_schema(responses=CheckpointOut(many=True))
    def get(self, request: Request) -> Response:
        paginator = self.Pagination()
        page = paginator.paginate_queryset(_checkpoints(), request, view=self)
        return paginator.get_paginated_response(CheckpointOut(page, many=True).data)


WHOLE_FROM_0 = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
WHOLE_FROM_1 = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}

# ASCII digits only: str.isdigit() also takes "²" and "١", which int() then refuses or
# reads; 19 digits is as far as a 64-bit tree size goes.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,19}")


def _positive(request: Request, name: str, *, minimum: int = 1) -> int:
    value = request.query_params.get(name, "")
    if not _WHOLE_NUMBER.fullmatch(value) or int(value) < minimum:
        raise invalid({name: [f"is required: a whole number ≥ {minimum}"]})
    return int(value)


def _sealed_or_409(size: int) -> None:
    sealed = sealed_size()
    if size > sealed:
        raise ApplicationError(
            f"size {size} is beyond the sealed log ({sealed} events); the next checkpoint "
            "will seal it",
            code="not_sealed",
        )


class InclusionProofApi(APIView):
    """Proof that event `seq` is leaf seq−1 of the tree of size `size` (default: the latest
    checkpoint's)."""

    permission_classes = [role_permission(*READERS)]

    @extend_schema(
        parameters=[
            OpenApiParameter("seq", WHOLE_FROM_1, required=True, description="event number"),
            OpenApiParameter("size", WHOLE_FROM_1, description="default: the latest checkpoint"),
        ],
        responses={200: InclusionOut, 404: error(NO_CHECKPOINT), 409: error(NOT_SEALED)},
    )
    def get(self, request: Request) -> Response:
        seq = _positive(request, "seq")
        size = (
            _positive(request, "size")
            if "size" in request.query_params
            else selectors.latest_size()
        )
        if seq > size:
            raise invalid({"seq": [f"event #{seq} is not in a tree of size {size}"]})
        _sealed_or_409(size)
        tree = StoredTree()
        body = {
            "seq": seq,
            "leaf_index": seq - 1,
            "tree_size": size,
            "leaf_hash": tree.node(0, seq - 1).hex(),
            "root": tree.root(size).hex(),
            "proof": [h.hex() for h in tree.inclusion_proof(seq - 1, size)],
        }
        return Response(InclusionOut(body).data)


class ConsistencyProofApi(APIView):
    """Proof that the tree of size `to` extends the tree of size `from`."""

    permission_classes = [role_permission(*READERS)]

    @extend_schema(
        parameters=[
            OpenApiParameter("from", WHOLE_FROM_0, required=True),
            OpenApiParameter("to", WHOLE_FROM_1, required=True),
        ],
        responses={200: ConsistencyOut, 409: error(NOT_SEALED)},
    )
    def get(self, request: Request) -> Response:
        old, new = _positive(request, "from", minimum=0), _positive(request, "to")
        if old > new:
            raise invalid({"from": ["must not be larger than to"]})
        _sealed_or_409(new)
        tree = StoredTree()
        body = {
            "from": old,
            "to": new,
            "old_root": (tree.root(old) if old else merkle.EMPTY_ROOT).hex(),
            "new_root": tree.root(new).hex(),
            "proof": [h.hex() for h in tree.consistency_proof(old, new)],
        }
        return Response(ConsistencyOut(body).data)


# --- alerts ------------------------------------------------------------------------------------


class AlertOut(serializers.ModelSerializer):
    state = serializers.ChoiceField(choices=["open", "acknowledged", "resolved"])
    acknowledged_by = serializers.CharField(source="acknowledged_by.username", default=None)
    resolved_by = serializers.CharField(source="resolved_by.username", default=None)

    class Meta:
        model = Alert
        fields = [
            "id", "kind", "scope", "message", "state", "created_at", "acknowledged_at",
            "acknowledged_by", "resolved_at", "resolved_by", "notes",
        ]  # fmt: skip


class AlertNoteIn(serializers.Serializer):
    note = serializers.CharField(allow_blank=True, max_length=2000, required=False, default="")


class AlertListApi(APIView):
    """Alerts, newest first: `?state=open|acknowledged|resolved`, `?kind=`, `?scope=`."""

    permission_classes = [role_permission(r.AUDITOR)]

    class Filters(serializers.Serializer):
        state = serializers.ChoiceField(["open", "acknowledged", "resolved"], required=False)
        kind = serializers.CharField(required=False, max_length=50)
        scope = serializers.CharField(required=False, max_length=100)

    class Pagination(CursorPagination):
        ordering = "-id"
        page_size = 100

    @extend_schema(parameters=[Filters], responses=AlertOut(many=True))
    def get(self, request: Request) -> Response:
        filters = self.Filters(data=request.query_params)
        filters.is_valid(raise_exception=True)
        alerts = selectors.alerts(**filters.validated_data).select_related(
            "acknowledged_by", "resolved_by"
        )
        paginator = self.Pagination()
        page = paginator.paginate_queryset(alerts, request, view=self)
        return paginator.get_paginated_response(AlertOut(page, many=True).data)


class AlertAcknowledgeApi(APIView):
    """Say that someone is looking at an alert (it stays open), with an optional note."""

    permission_classes = [role_permission(r.AUDITOR)]

    @extend_schema(request=AlertNoteIn, responses=AlertOut)
    def post(self, request: Request, alert_id: int) -> Response:
        data = AlertNoteIn(data=request.data)
        data.is_valid(raise_exception=True)
        alert = services.alert_acknowledge(
            alert_id=alert_id, actor=request.user, note=data.validated_data["note"]
        )
        return Response(AlertOut(alert).data)


class AlertResolveApi(APIView):
    """Close an alert with a note saying what was found or done (required)."""

    permission_classes = [role_permission(r.AUDITOR)]

    @extend_schema(request=AlertNoteIn, responses=AlertOut)
    def post(self, request: Request, alert_id: int) -> Response:
        data = AlertNoteIn(data=request.data)
        data.is_valid(raise_exception=True)
        alert = services.alert_resolve(
            alert_id=alert_id, actor=request.user, note=data.validated_data["note"]
        )
        return Response(AlertOut(alert).data)
