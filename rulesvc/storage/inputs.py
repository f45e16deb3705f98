"""The clear inputs as stored: encrypted with the database's keyring when one is configured
(`rulesvc.datakeys`), read back in clear; rows stored in clear stay readable. The keyring is registered per
engine (its pool) by the composition root (`use_keyring`)."""

from __future__ import annotations

import threading
import weakref
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import sessionmaker

from rulesvc.datakeys import DataKeyError, Keyring, key_id_of
from rulesvc.storage.engine import writer
from rulesvc.storage.tables import DecisionInputRow

_KEYRINGS: weakref.WeakKeyDictionary[Any, Keyring] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def use_keyring(engine: Engine, keyring: Keyring | None) -> None:
    """Inputs written through `engine` from now on are encrypted with `keyring` (None: stored in clear)."""
    with _LOCK:
        if keyring is None:
            _KEYRINGS.pop(engine.pool, None)
        else:
            _KEYRINGS[engine.pool] = keyring


def keyring_of(pool: Any) -> Keyring | None:
    with _LOCK:
        return _KEYRINGS.get(pool)


def stored_input(pool: Any, decision_id: str, clear: str) -> str:
    keyring = keyring_of(pool)
    return keyring.encrypt(clear, decision_id) if keyring is not None else clear


def clear_input(pool: Any, decision_id: str, stored: str | None) -> str | None:
    """The clear text of a stored input (raises `DataKeyError` when it cannot be decrypted)."""
    if stored is None:
        return None
    keyring = keyring_of(pool)
    if keyring is None:
        if key_id_of(stored) is not None:
            raise DataKeyError(f"决策 {decision_id} 的输入已加密，但未配置数据密钥（RULESVC_DATA_KEYS）")
        return stored
    return keyring.decrypt(stored, decision_id)


def checked_input(pool: Any, decision_id: str, stored: str | None) -> str | None:
    """As `clear_input`, None when it cannot be decrypted (`verify` then reports the decision's input)."""
    try:
        return clear_input(pool, decision_id, stored)
    except DataKeyError:
        return None


def rotate(engine: Engine, batch: int = 500) -> dict[str, int]:
    """Re-wrap every stored input's data key under the current key (encrypting rows stored in clear), in
    batches of short transactions: the service keeps running. Returns counts (`rewrapped`, `unchanged`)."""
    keyring = keyring_of(engine.pool)
    if keyring is None:
        raise DataKeyError("未配置数据密钥（RULESVC_DATA_KEYS 或 RULESVC_DATA_KEY_FILE），无法轮换")
    read = sessionmaker(bind=engine)
    write = sessionmaker(bind=writer(engine))
    counts = {"rewrapped": 0, "unchanged": 0}
    last = ""
    while True:
        with read() as session:
            rows = session.execute(
                select(DecisionInputRow.decision_id, DecisionInputRow.event)
                .where(DecisionInputRow.decision_id > last)
                .order_by(DecisionInputRow.decision_id)
                .limit(batch)
            ).all()
        if not rows:
            return counts
        changes = [(d, keyring.rewrap(e, d)) for d, e in rows]
        with write() as session, session.begin():
            for decision_id, new in changes:
                if new is None:
                    counts["unchanged"] += 1
                    continue
                session.execute(
                    update(DecisionInputRow)
                    .where(DecisionInputRow.decision_id == decision_id)
                    .values(event=new)
                )
                counts["rewrapped"] += 1
        last = str(rows[-1][0])
