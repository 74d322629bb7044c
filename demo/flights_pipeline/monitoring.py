"""Monitoring: the served flight-delay model against the months it learned from.

The reference is the model version's own training data, found through lineage (the
version of ``flight_features`` it read) and restricted to its training months with the
run's ``train_months`` param. Each window of 400 logged predictions is compared with it:
feature drift, prediction drift, and, once labels are attached, the model's AUC against
its own holdout AUC. A breach is logged and posted to a webhook signed with the secret
in ``DEMO_WEBHOOK_SECRET``, and it retrains the model on January to August on a branch
of its own (``retrain/flight_delay_watch/<alert>``, made from main, no data copied); the
new version becomes the challenger, and only if the promotion policy in ``training.py``
passes does the branch merge into main and the champion move.
"""

from __future__ import annotations

import os

from headrace import monitors as m

m.monitor(
    "flight_delay_watch",
    description="the served flight_delay model against the months it was trained on",
    model="flight_delay",
    alias="champion",
    reference_where="month <= {train_months}",
    window=400,
    min_rows=200,
    # headrace daemon evaluates it once a day (the demo: daemon --once --at tomorrow)
    schedule="1d",
    # the weather columns move with any change of season; a window drifts when more
    # than they do (six columns in ten)
    drift_share=0.6,
    target="delayed",
    limits=[m.performance("roc_auc", baseline="holdout_auc", max_drop=0.03)],
    actions=[
        m.log("warning"),
        m.webhook(
            os.environ.get("DEMO_WEBHOOK_URL", "http://127.0.0.1:8787/alerts"),
            secret_env="DEMO_WEBHOOK_SECRET",
        ),
        m.retrain("flight_delay", params={"train_months": 8}),
    ],
    cooldown="6h",
)
