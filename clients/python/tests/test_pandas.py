"""`submit_df`: a DataFrame's rows as items (the `pandas` extra)."""

import pandas as pd

from conftest import Project, Server
from flywheel import Client


def test_submit_df(server: Server, project: Project) -> None:
    df = pd.DataFrame(
        {
            "id": [10, 11, 12],
            "body": ["WIN now", "lunch?", "cheap pills"],
            "p_spam": [0.97, 0.02, 0.6],
            "p_ham": [0.03, 0.98, 0.4],
            "country": ["fr", "uk", "fr"],
        }
    )
    fw = Client(server.url, api_key=project.service_key)
    decisions = fw.submit_df(
        project.name, df, "id", "body", {"spam": "p_spam", "ham": "p_ham"}, model="nb", attribute_columns=["country"]
    )
    assert [(d["external_id"], d["outcome"], d.get("label")) for d in decisions] == [
        ("10", "auto", "spam"),
        ("11", "auto", "ham"),
        ("12", "review", None),
    ]
    detail = fw.item(project.name, "12")
    assert detail["item"]["payload"] == {"text": "cheap pills"}
    assert detail["item"]["attributes"] == {"country": "fr"}
    prediction = detail["item"].get("prediction") or {}
    assert dict(prediction["scores"]) == {"ham": 0.4, "spam": 0.6}
