"""Survey alert packets (ZTF every schema version, Rubin lsst.v9/v10) in Avro (every codec), Parquet (Fink)
or JSON: decoding, stamps, scoring and broker output.

- :mod:`pipeline.alerts.avro`: Avro object containers split into packets, with errors per packet.
- :mod:`pipeline.alerts.parquet`: Parquet alert files (Fink), one packet per row.
- :mod:`pipeline.alerts.json_alerts`: JSON alerts (braai, Kowalski), one packet per object.
- :mod:`pipeline.alerts.formats`: which of those readers a file needs.
- :mod:`pipeline.alerts.duplicates`: a second packet of one alert (``candid``) told apart.
- :mod:`pipeline.alerts.decode`: packets to :class:`Alert` records and cutout triplets, in parallel.
- :mod:`pipeline.alerts.cutouts`: the gzipped FITS cutouts of a packet to pixels and masks.
- :mod:`pipeline.alerts.stamps`: a triplet brought to the model's stamp size.
- :mod:`pipeline.alerts.quality`: quality flags of scored alerts, thresholds from a TOML config.
- :mod:`pipeline.alerts.scorers`: one or several real-bogus models on a decoded micro-batch.
- :mod:`pipeline.alerts.scoring`: alert files, or the new files of followed folders, scored straight to a
  catalog and broker records.
- :mod:`pipeline.alerts.outputs`: the output folder of a scoring run (catalog, broker records, rejects,
  summary), committed on success.
- :mod:`pipeline.alerts.frames`: a pandas DataFrame of packets scored row by row (Spark pandas UDFs).
- :mod:`pipeline.alerts.follow`: a folder followed as files land, each file processed exactly once.
- :mod:`pipeline.alerts.broker`: one classification record per alert (Avro with the published schema, JSON).
- :mod:`pipeline.alerts.kafka_stream`: Kafka topics scored in micro-batches, offsets committed after the
  outputs are durable, every alert once (:mod:`pipeline.alerts.kafka_io`: the client, settings, messages,
  records out; :mod:`pipeline.alerts.kafka_state`: the state database).
"""

from pipeline._lazy import lazy_exports

#: name -> submodule that defines it
_EXPORTS = {
    "read_header": "avro",
    "DuplicateFilter": "duplicates",
    "alert_format": "formats",
    "iter_alert_packets": "formats",
    "iter_json_packets": "json_alerts",
    "iter_parquet_packets": "parquet",
    "read_classifications": "broker",
    "utc_datetime": "broker",
    "decode_cutout": "cutouts",
    "fits_bytes": "cutouts",
    "simple_primary_layout": "cutouts",
    "Alert": "decode",
    "AlertDecoder": "decode",
    "decode_alert_bytes": "decode",
    "decode_alert_file": "decode",
    "expand_alert_inputs": "decode",
    "is_alert_name": "decode",
    "read_alerts": "decode",
    "score_alert_frame": "frames",
    "AlertOutputs": "outputs",
    "AlertScoreReport": "outputs",
    "FollowSettings": "follow",
    "FollowState": "follow",
    "STATE_NAME": "follow",
    "StabilityWatcher": "follow",
    "AlertScorer": "scorers",
    "alert_catalog": "scorers",
    "alert_batch_writer": "scoring",
    "follow_alerts": "scoring",
    "require_real_bogus": "scorers",
    "score_alert_files": "scoring",
    "write_alert_outputs": "scoring",
    "conform": "stamps",
    "KafkaReport": "kafka_stream",
    "KafkaSettings": "kafka_io",
    "KafkaState": "kafka_state",
    "KafkaUnavailable": "kafka_io",
    "require_confluent_kafka": "kafka_io",
    "score_kafka_stream": "kafka_stream",
    "edge_cut": "stamps",
    "QualityConfigError": "quality",
    "QualityThresholds": "quality",
    "load_quality_config": "quality",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
