"""Prefect blocks: where a run's credentials come from.

A run is given block names; `load_block` asks the Prefect API whether a block of that
type and name exists and loads it, or returns None. Whether a missing block is an
error depends on the run: an ad hoc run falls back (embedded warehouse, dry run), a
deployment run never does.
"""

from __future__ import annotations

from typing import TypeVar

from prefect.blocks.core import Block

BlockType = TypeVar("BlockType", bound=Block)


def block_exists(block_type: type[Block], name: str) -> bool:
    """Whether the Prefect API holds a block document of this type and name."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_block_document_by_name(
                name=name, block_type_slug=block_type.get_block_type_slug(), include_secrets=False
            )
        except ObjectNotFound:
            return False
    return True


def load_block(block_type: type[BlockType], name: str) -> BlockType | None:
    """The block of this type and name, or None when there is none."""
    if not block_exists(block_type, name):
        return None
    block = block_type.load(name, _sync=True)  # type: ignore[call-arg]
    assert isinstance(block, block_type)
    return block


def in_deployment_run() -> bool:
    """True inside a run started from a deployment (where a missing block is an error)."""
    from prefect.runtime import deployment

    return deployment.id is not None
