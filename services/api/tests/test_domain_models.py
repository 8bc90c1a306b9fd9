"""The model-library domain functions, called directly (no HTTP): listing, promotion and
thresholds through the life cycle, the confusion matrix, and their errors."""

from __future__ import annotations

from typing import Any

import pytest

from hydra_api.common import Pagination
from hydra_api.domain import models
from hydra_common.db.schema import Model, ModelStatus, Split
from hydra_common.errors import InvalidInput, NotFound

PAGE = Pagination(limit=10, offset=0)


async def test_list_models_of_a_plot_type_newest_first(api: Any) -> None:
    pt = await api.plot_type(labels=("Good", "Bad"))
    v1, v2 = await api.active_and_candidate(pt)
    async with api.session() as s:
        listed = await models.list_models(s, PAGE, pt.name)
        assert [m.id for m in listed.items] == [v2.id, v1.id] and listed.total == 2
        assert [m.active for m in listed.items] == [False, True]
        trained = await models.list_models(s, PAGE, pt.name, ModelStatus.TRAINED)
        assert [m.id for m in trained.items] == [v2.id]
        with pytest.raises(NotFound):
            await models.list_models(s, PAGE, api.unique("no_such_plot_type"))


async def test_promote_serves_the_model_and_retires_the_previous(api: Any) -> None:
    pt = await api.plot_type(labels=("Good", "Bad"))
    v1, v2 = await api.active_and_candidate(pt)
    async with api.session() as s:
        m, row = await models.get_model(s, v2.id)
        out = await models.promote(s, m, row, "expert")
        assert out.active is True and out.status == ModelStatus.ACTIVE
    async with api.session() as s:
        old = await s.get(Model, v1.id)
        assert old is not None and old.status == ModelStatus.RETIRED


async def test_thresholds_set_by_hand_and_listed(api: Any) -> None:
    pt = await api.plot_type(labels=("Good", "Bad"))
    _v1, v2 = await api.active_and_candidate(pt)
    async with api.session() as s:
        t = await models.set_threshold(s, v2.id, "Bad", 0.8, "expert")
        assert (t.label, t.threshold, t.method, t.set_by) == ("Bad", 0.8, "manual", "expert")
        assert [(x.label, x.threshold) for x in await models.thresholds(s, v2.id)] == [("Bad", 0.8)]
        with pytest.raises(InvalidInput):
            await models.set_threshold(s, v2.id, "Bad", 0.8, " ")


async def test_confusion_without_evaluations_and_unknown_models(api: Any) -> None:
    pt = await api.plot_type(labels=("Good", "Bad"))
    _v1, v2 = await api.active_and_candidate(pt)
    async with api.session() as s:
        matrix = await models.confusion(s, v2.id, Split.TEST)
        assert matrix.total == 0 and matrix.cells == [] and matrix.labels == ["Good", "Bad"]
        detail = await models.model_detail(s, v2.id)
        assert detail.training_set is None and detail.thresholds == []
        with pytest.raises(NotFound):
            await models.get_model(s, 999_999_999)
        with pytest.raises(NotFound):
            await models.report_entry(s, 999_999_999)
