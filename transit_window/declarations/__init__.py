"""Transit movements: declarations lodged at the office of departure, released and shared along the route as
anticipated records, crossings at border posts, arrival and control results at destination, write-off at departure.
Modelled on NCTS (IE015 → IE028/IE029 → IE050/IE001 → IE118 → IE006/IE018 → IE045)."""
