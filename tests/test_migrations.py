"""The migrations build the schema from empty on both databases, and match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from occupant.kit.db import Base
from occupant.kit.migrate import include_object


def test_migrations_match_the_models(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={"include_object": include_object, "compare_type": True, "target_metadata": Base.metadata},
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_schema_has_every_table_and_the_search_index(engine):
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    if engine.dialect.name == "sqlite":
        assert "occupier_users_fts" in tables
    else:
        indexes = {i["name"] for i in inspect(engine).get_indexes("occupier_users")}
        assert "ix_occupier_users_search_trgm" in indexes


def test_upgrade_from_empty_and_downgrade_to_base(tmp_path):
    from alembic import command

    from occupant.kit.db import make_engine
    from occupant.kit.migrate import alembic_config, upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert "occupier_users" in inspect(engine).get_table_names()


def test_nas_identifiers_shared_by_two_operators_stop_the_upgrade_with_their_names(tmp_path):
    import pytest
    from sqlalchemy import delete, insert
    from sqlalchemy.exc import IntegrityError

    from occupant.kit.db import make_engine
    from occupant.kit.migrate import upgrade
    from occupant.operators.models import Operator
    from occupant.sites.models import Site, SiteNas

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine, "0004_wifi")
    with engine.begin() as conn:
        for n in (1, 2):
            conn.execute(insert(Operator.__table__).values(id=n, name=f"Operator {n}"))
            conn.execute(
                insert(Site.__table__).values(id=n, operator_id=n, code="LON01", name="L", country="GB")
            )
            conn.execute(insert(SiteNas.__table__).values(operator_id=n, site_id=n, identifier="ap-1"))
        conn.execute(insert(SiteNas.__table__).values(operator_id=2, site_id=2, identifier="ap-2"))
    with pytest.raises(RuntimeError, match=r"more than one operator.*: ap-1\."):
        upgrade(engine)
    with engine.begin() as conn:
        conn.execute(delete(SiteNas.__table__).where(SiteNas.operator_id == 2, SiteNas.identifier == "ap-1"))
    upgrade(engine)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(SiteNas.__table__).values(operator_id=2, site_id=2, identifier="ap-1"))
