from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from audit.canonical import event_text, event_text_v2, format_time


class AuditEvent(models.Model):
    """One entry of the append-only log.

    `audit.record` writes an event in the transaction of the change it records, *staged*:
    without seq, time, prev_hash or hash. The sealer (audit.sealer) then gives committed
    staged events, in order, their gapless seq, their seal time, their link to the event
    before and their hash (= Merkle leaf), once. The database refuses every other UPDATE,
    and every DELETE and TRUNCATE (audit.db)."""

    id = models.BigAutoField(primary_key=True)
    seq = models.BigIntegerField(null=True, blank=True, unique=True)
    # When it was sealed into the log (format 2) or appended (format 1); null while staged.
    time = models.DateTimeField(null=True, blank=True)
    # When the change was made (format 2); null for format-1 events, whose time is that.
    recorded_at = models.DateTimeField(null=True, blank=True)
    format = models.PositiveSmallIntegerField(default=2)
    actor = models.CharField(max_length=200)
    action = models.CharField(max_length=100)
    object_type = models.CharField(max_length=50, blank=True)
    object_id = models.CharField(max_length=100, blank=True)
    # Canonical JSON text, stored as text so that the bytes that were hashed are the bytes kept.
    payload = models.TextField()
    prev_hash = models.CharField(max_length=64, null=True, blank=True)
    hash = models.CharField(max_length=64, unique=True, null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
            models.Index(fields=["action", "seq"], name="audit_action_idx"),
            models.Index(fields=["time"], name="audit_time_idx"),
            # The sealer's work list stays as small as what is waiting.
            models.Index(fields=["id"], condition=Q(seq__isnull=True), name="audit_staged_idx"),
        ]

    def __str__(self) -> str:
        where = f"#{self.seq}" if self.seq else f"staged {self.id}"
        return f"{where} {self.action} {self.object_type}:{self.object_id}"

    @property
    def sealed(self) -> bool:
        return self.seq is not None

    @property
    def when(self):
        """When the change happened."""
        return self.recorded_at or self.time

    @property
    def canonical(self) -> str:
        """The canonical text that was hashed (sealed events only)."""
        if self.format == 1:
            return event_text(
                seq=self.seq,
                time=format_time(self.time),
                actor=self.actor,
                action=self.action,
                object_type=self.object_type,
                object_id=self.object_id,
                payload=self.payload,
                prev_hash=self.prev_hash,
            )
        return event_text_v2(
            seq=self.seq,
            time=format_time(self.time),
            recorded_at=format_time(self.recorded_at),
            actor=self.actor,
            action=self.action,
            object_type=self.object_type,
            object_id=self.object_id,
            payload=self.payload,
            prev_hash=self.prev_hash,
        )


class SealPermit(models.Model):
    """Present only inside the sealer's own transaction (inserted, then deleted, before it
    commits): the append-only trigger lets a staged event be sealed only while it exists, so
    nothing else can set or change the fields sealing sets (audit.db)."""

    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"seal permit {self.created_at}"


class ChainVerification(models.Model):
    """The result of one run of the chain verifier (command, periodic task or "verify now")."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    requested_by = models.CharField(max_length=200)
    requested_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    # While running, the worker's heartbeat (core.jobs); how many times a worker took it.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(null=True)
    events_checked = models.BigIntegerField(default=0)
    last_seq = models.BigIntegerField(default=0)
    first_bad_seq = models.BigIntegerField(null=True, blank=True)
    problem = models.CharField(max_length=40, blank=True)
    message = models.TextField(blank=True)
    checkpoints_checked = models.IntegerField(default=0)

    class Meta:
        ordering = ["-requested_at", "-id"]
        get_latest_by = "requested_at"

    def __str__(self) -> str:
        return f"verification {self.pk}: {self.status} {self.message}"


class MerkleNode(models.Model):
    """The hash of a complete, aligned subtree of the log's Merkle tree: level L, index i covers
    leaves [i·2^L, (i+1)·2^L). Kept as the log is sealed, so proofs read O(log n) rows instead
    of rehashing every leaf."""

    level = models.SmallIntegerField()
    index = models.BigIntegerField()
    hash = models.BinaryField(max_length=32)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["level", "index"], name="merkle_node_once"),
        ]

    def __str__(self) -> str:
        return f"node L{self.level}#{self.index}"


class TreeState(models.Model):
    """How many events the stored Merkle nodes cover: a row per extension of the tree, the
    largest size being the current one. Append-only, like the nodes (audit.db)."""

    size = models.BigIntegerField(default=0, unique=True)
    updated_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"tree of {self.size} leaves"


class Checkpoint(models.Model):
    """A signed tree head: the log's size and Merkle root, signed with the checkpoint key in the
    C2SP signed-note form. Append-only, like the events."""

    tree_size = models.BigIntegerField(unique=True)
    root = models.CharField(max_length=64)
    origin = models.CharField(max_length=200)
    key_id = models.CharField(max_length=8)
    note = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-tree_size"]
        get_latest_by = "tree_size"

    def __str__(self) -> str:
        return f"checkpoint {self.tree_size} {self.root[:12]}…"


class Cosignature(models.Model):
    """A witness's C2SP cosignature/v1 on a checkpoint: its statement that this is the
    largest tree head of the log it has seen, consistent with all it saw before. Verified
    against the witness keys Oversight knows (AUDIT_WITNESS_KEYS) before it is kept.
    Append-only."""

    checkpoint = models.ForeignKey(
        Checkpoint, on_delete=models.PROTECT, related_name="cosignatures"
    )
    witness = models.CharField(max_length=200)
    key_id = models.CharField(max_length=8)
    signed_at = models.DateTimeField()
    # The signature line as the witness wrote it; appended to the note, anyone can check it.
    line = models.TextField()
    # The witness's address when Oversight asked it (AUDIT_WITNESS_URLS); "" when it came.
    url = models.CharField(max_length=500, blank=True)
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["-checkpoint__tree_size", "witness"]
        constraints = [
            models.UniqueConstraint(fields=["checkpoint", "key_id"], name="one_cosignature_each"),
        ]

    def __str__(self) -> str:
        return f"{self.witness} on checkpoint {self.checkpoint_id}"


class Alert(models.Model):
    """Something a person must look at (a refused checkpoint, a failed verification, a dead
    message, a gap between groups). Open until a person resolves it, with a note; one open
    alert per kind and scope, so a condition that persists does not pile up alerts."""

    kind = models.CharField(max_length=50)
    # What it is about, e.g. "model:mortgage-approval"; "" for the log itself.
    scope = models.CharField(max_length=100, blank=True)
    message = models.TextField()
    created_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # What the people who acknowledged and resolved it wrote, one line each.
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "scope"],
                condition=Q(resolved_at__isnull=True) & ~Q(scope=""),
                name="one_open_alert_per_kind_and_scope",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message[:60]}"

    @property
    def state(self) -> str:
        if self.resolved_at:
            return "resolved"
        return "acknowledged" if self.acknowledged_at else "open"
