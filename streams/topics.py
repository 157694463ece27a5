"""The topics the worker reads and writes (values are raw bytes, validated by the agent)."""

import faust

from footprint.settings import get_settings
from streams.app import app
from streams.schema import RawSchema

__all__ = [
    "dead_letter_topic",
    "footprints_topic",
    "notifications_dead_letter_topic",
    "notifications_topic",
]

_settings = get_settings()

# Its buffer holds a whole batch, and never less than Faust's default: the next batch is fetched
# while a pass runs (streams/buffer.py). Made as App.topic makes a topic, which takes
# ``maxsize`` but does not pass it on.
footprints_topic = faust.Topic(
    app,
    topics=[_settings.footprints_topic],
    partitions=_settings.partitions,
    schema=RawSchema(),
    maxsize=max(_settings.batch_size, app.conf.stream_buffer_maxsize),
)

# One partition keeps dead letters in arrival order; they are rare by construction.
dead_letter_topic = app.topic(
    _settings.dead_letter_topic,
    partitions=1,
    schema=RawSchema(),
)

notifications_topic = app.topic(
    _settings.notifications_topic,
    partitions=_settings.partitions,
    schema=RawSchema(),
)

notifications_dead_letter_topic = app.topic(
    _settings.notifications_dead_letter_topic,
    partitions=1,
    schema=RawSchema(),
)
