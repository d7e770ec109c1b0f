"""One router per side of the marketplace."""
