"""What declarations offers the features built on a movement (tracking), the one module of it they may import.

They read movements and steps (`Movement`, `MovementStep` are read models to them: only declarations writes those
tables), tell the rest of a movement's route something (`broadcast`), and keep a message of theirs that outran the
movement's record (`park`: it is handed back through `ports.ParkedMessage` when the record comes). Everything else
they learn from the events declarations publishes (`events.py`). `lint-imports` holds them to this module and those.
"""

from __future__ import annotations

from transit_window.declarations.journey import FINAL, broadcast
from transit_window.declarations.messages import MRN, StatusRequestBody
from transit_window.declarations.models import Movement, MovementStep
from transit_window.declarations.service import park

__all__ = ["FINAL", "MRN", "Movement", "MovementStep", "StatusRequestBody", "broadcast", "park"]
