"""Drive: deliveries requested by businesses, as pure values and rules.

A delivery is an ordinary order (one line item "delivery" with the declared
order value) plus the fields only a business delivery has: the caller's
``external_delivery_id``, pickup and drop-off windows, drop-off contact and
instructions, proof requirements, what to do when undeliverable, and a public
tracking token. ``model`` holds the values, ``windows`` and ``proof`` the
rules checked at creation and at the door, ``thresholds`` the pure evaluation
of ETA/proximity/delay thresholds, ``notices`` which notifications an order
event produces.
"""
