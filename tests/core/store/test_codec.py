"""Row encoding: the fast paths must give exactly what validation would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.errors import StoreError
from core.models import Colour, Endpoint, Observation, Transport
from core.pipeline.reconcile import reconcile
from core.store import codec, tables
from tests.core.store.factories import T0, full_observation, observation

READ_ORDER = ("ip", "port", "transport", *codec.OBS_FIELDS, "extra")


def _row(obs: Observation, time: codec.TimeCodec) -> dict[str, object]:
    """The `observations` row the store writes for `obs`, by column name."""
    return dict(zip(codec.OBS_COLUMNS, codec.observation_values(1, obs, time), strict=True))


def _read_back(obs: Observation, text_times: bool = True) -> Observation:
    """Encode as the store writes a row, then decode as it reads one."""
    row = _row(obs, codec.TimeCodec(text=text_times))
    endpoint = Endpoint.model_validate(obs.endpoint.model_dump())
    return codec.observation(endpoint, tuple(row[name] for name in READ_ORDER))


def test_every_extra_field_has_a_decoder() -> None:
    # A field added to Observation must be taught to the reader, or rows would not load.
    assert set(codec._EXTRA_DECODERS) == codec.OBS_EXTRA


@pytest.mark.parametrize("text_times", [True, False], ids=["sqlite", "aware-driver"])
def test_a_decoded_observation_equals_the_validated_one(text_times: bool) -> None:
    original = full_observation(raw_id=7)
    back = _read_back(original, text_times)

    assert back == original
    assert back == Observation.model_validate(original.model_dump())
    assert back.model_dump() == original.model_dump()
    assert back.model_dump_json() == original.model_dump_json()
    assert type(back.tls).__name__ == "TlsSummary" and back.vulns[0].cvss == 7.7
    assert isinstance(back.cpes, tuple) and isinstance(back.tags, tuple)


def test_observation_values_are_in_the_tables_column_order() -> None:
    # The store hands these tuples to a positional INSERT over exactly these columns.
    columns = tuple(c.name for c in tables.observations.columns if c.name != "id")
    assert columns == codec.OBS_COLUMNS
    obs = full_observation(raw_id=3)
    values = codec.observation_values(1, obs, codec.TimeCodec(text=True))
    assert values[columns.index("ip")] == "2001:db8::10"
    assert values[columns.index("raw_id")] == 3
    assert values[columns.index("state")] == "open|filtered"
    assert values[columns.index("observed_at")] == "2026-02-03 02:05:06.000789"


def test_an_observation_with_only_defaults_stores_no_extra() -> None:
    obs = observation(cpes=(), tags=())  # set explicitly, still at the defaults
    row = _row(obs, codec.TimeCodec(text=True))
    assert row["extra"] is None
    assert _read_back(obs) == obs


def test_an_unknown_stored_field_asks_for_an_upgrade() -> None:
    row = _row(observation(), codec.TimeCodec(text=True))
    row["extra"] = '{"banner": "x", "shiny_new_field": 1}'
    with pytest.raises(StoreError, match=r"shiny_new_field.*upgrade portintel"):
        codec.observation(observation().endpoint, tuple(row[name] for name in READ_ORDER))


def test_grouped_rows_decode_each_rows_own_extra_when_texts_repeat_and_change() -> None:
    # Given one endpoint's rows whose extras go A, A, B, A (the reader reuses the
    # previous row's decoded extra while the text repeats), and a row with none
    time = codec.TimeCodec(text=True)
    given = [
        observation(banner="A", tags=("cdn",)),
        observation(banner="A", tags=("cdn",)),
        observation(banner="B", hostnames=("b.example",)),
        observation(banner="A", tags=("cdn",)),
        observation(),
    ]
    rows = [tuple(_row(obs, time)[name] for name in READ_ORDER) for obs in given]

    # When they are read back as the store reads them
    [(_, back)] = list(codec.group_observations(rows))

    # Then each is its own observation again
    assert back == given
    assert [obs.model_dump_json() for obs in back] == [obs.model_dump_json() for obs in given]


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        datetime(2026, 1, 2, 5, 4, 5, 6, tzinfo=timezone(timedelta(hours=2))),
    ],
    ids=["whole-second", "microseconds", "other-zone"],
)
def test_sqlite_times_are_utc_text_in_sqlalchemys_layout(value: datetime) -> None:
    text = codec.TimeCodec(text=True).encode(value)
    assert text == value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    back = codec.TimeCodec.decode(text)
    assert back == value and back is not None and back.tzinfo is UTC


def test_times_from_an_aware_driver_come_back_in_utc() -> None:
    local = datetime(2026, 1, 2, 5, 0, tzinfo=timezone(timedelta(hours=2)))
    assert codec.TimeCodec(text=False).encode(local) is local
    decoded = codec.TimeCodec.decode(local)
    assert decoded == local and decoded is not None and decoded.tzinfo is UTC
    naive = codec.TimeCodec.decode(datetime(2026, 1, 2, 3, 0))
    assert naive is not None and naive.tzinfo is UTC and naive.hour == 3
    assert codec.TimeCodec.decode(None) is None


def test_a_shared_time_is_formatted_once_and_stays_correct() -> None:
    time = codec.TimeCodec(text=True)
    first, second = T0, T0 + timedelta(seconds=1)
    assert time.encode_shared(first) == "2026-03-01 12:00:00.123456"
    assert time.encode_shared(first) == "2026-03-01 12:00:00.123456"
    assert time.encode_shared(second) == "2026-03-01 12:00:01.123456"
    assert codec.TimeCodec(text=False).encode_shared(first) is first


def test_trusted_models_skip_validation_but_behave_like_models() -> None:
    endpoint = codec.trusted(Endpoint, {"ip": "192.0.2.1", "port": 22, "transport": Transport.TCP})
    assert endpoint == Endpoint(ip="192.0.2.1", port=22)
    assert hash(endpoint) == hash(Endpoint(ip="192.0.2.1", port=22))
    with pytest.raises(Exception, match="frozen"):
        endpoint.port = 23  # type: ignore[misc]


def test_service_rows_are_in_the_tables_column_order() -> None:
    svc = reconcile(
        [
            full_observation(raw_id=1),
            observation(ip="2001:db8::10", port=8443, source="shodan", product="Caddy"),
        ]
    ).model_copy(update={"colour": Colour.YELLOW})
    time = codec.TimeCodec(text=True)
    service_row, source_rows = codec.service_rows(1, svc, time)
    row = dict(zip([c.name for c in tables.services.columns], service_row, strict=True))
    assert (row["ip"], row["port"], row["transport"]) == ("2001:db8::10", 8443, "tcp")
    assert (row["state"], row["status"], row["colour"]) == ("open", "cdn-edge", "yellow")
    assert row["first_seen"] == time.encode(svc.first_seen)
    assert row["last_seen"] == time.encode(svc.last_seen)
    assert row["data"] == svc.model_dump_json()  # the serializer itself, same JSON
    assert codec.service(row["data"]) == svc
    names = [c.name for c in tables.service_sources.columns]
    sources = [dict(zip(names, r, strict=True)) for r in source_rows]
    assert [(s["source"], s["state"]) for s in sources] == [
        ("import:nmap", "open|filtered"),
        ("shodan", "open"),
    ]
    # Each source's own times (equal to the service's or not: the service's are reused)
    assert [(s["first_seen"], s["last_seen"]) for s in sources] == [
        (time.encode(seen.first_seen), time.encode(seen.last_seen)) for seen in svc.per_source
    ]
    assert len({s["first_seen"] for s in sources}) == 2  # the two sources saw it apart
