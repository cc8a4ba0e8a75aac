"""TorchEasyRec's pipeline schema (package ``tzrec.protos``, alibaba/TorchEasyRec), the subset mtlrec reads.

Declarations only, field by field, with the real names, numbers and defaults of ``tzrec/protos/*.proto``;
:mod:`.schema` turns them into message classes. Fields that mtlrec does not map are declared too, so
that they parse and are reported as ignored.
"""

from __future__ import annotations

from mtlrec.config.easyrec_text.declarations import F, Msg, empty, enum, msg, rep

#: the protobuf package of the messages
PACKAGE = "tzrec.protos"

#: the enums the messages use
ENUMS = [
    enum("DatasetType", ("OdpsDataset", 1), ("ParquetDataset", 2), ("CsvDataset", 3), ("OdpsDatasetV1", 4),
          ("KafkaDataset", 5)),
    enum(
        "FieldType", "INT32", "INT64", "STRING", "FLOAT", "DOUBLE", "ARRAY_INT32", "ARRAY_INT64", "ARRAY_STRING",
        "ARRAY_FLOAT", "ARRAY_DOUBLE", "ARRAY_ARRAY_INT32", "ARRAY_ARRAY_INT64", "ARRAY_ARRAY_STRING",
        "ARRAY_ARRAY_FLOAT", "ARRAY_ARRAY_DOUBLE", "MAP_STRING_INT32", "MAP_STRING_INT64", "MAP_STRING_STRING",
        "MAP_STRING_FLOAT", "MAP_STRING_DOUBLE", "MAP_INT64_INT32", "MAP_INT64_INT64", "MAP_INT64_STRING",
        "MAP_INT64_FLOAT", "MAP_INT64_DOUBLE", "MAP_INT32_INT32", "MAP_INT32_INT64", "MAP_INT32_STRING",
        "MAP_INT32_FLOAT", "MAP_INT32_DOUBLE",
    ),
    enum("FgMode", ("FG_NONE", 1), ("FG_NORMAL", 2), ("FG_DAG", 3), ("FG_BUCKETIZE", 4)),
    enum("FeatureGroupType", "DEEP", "WIDE", "SEQUENCE", "JAGGED_SEQUENCE"),
    enum("Kernel", "TRITON", "PYTORCH", "CUTLASS"),
    enum("WeightDecayMode", "NONE", "L2", "DECOUPLE"),
]  # fmt: skip

#: the fields every TorchEasyRec feature message shares (feature.proto)
_FEATURE_COMMON = (
    F("feature_name", 1, "string"),
    F("embedding_name", 3, "string"),
    F("embedding_dim", 4, "uint32"),
    F("init_fn", 14, "string"),
    F("fg_encoded_default_value", 30, "string"),
    F("trainable", 33, "bool", default=True),
    F("stub_type", 34, "bool", default=False),
    F("data_type", 35, "string", default="FP32"),
    F("sequence_length", 101, "uint32"),
    F("sequence_delim", 102, "string", default=";"),
    rep("sequence_fields", 103, "string"),
)


def _feature(name: str, *fields: F, nested: tuple[Msg, ...] = ()) -> Msg:
    numbers = {f.number for f in fields}
    names = {f.name for f in fields}
    common = tuple(f for f in _FEATURE_COMMON if f.number not in numbers and f.name not in names)
    return Msg(name, (*common, *fields), nested=nested)


#: ``map<string, uint64> vocab_dict`` (a map field is a repeated nested entry message)
_VOCAB_DICT_ENTRY = Msg("VocabDictEntry", (F("key", 1, "string"), F("value", 2, "uint64")), map_entry=True)


_TOWER = (
    F("tower_name", 1, "string"),
    F("label_name", 2, "string"),
    rep("metrics", 3, "MetricConfig"),
    rep("train_metrics", 20, "TrainMetricConfig"),
    rep("losses", 4, "LossConfig"),
    F("num_class", 5, "uint32", default=1),
    F("mlp", 6, "MLP"),
    F("weight", 7, "float", default=1.0),
)

_LEARNING_RATES = (
    F("constant_learning_rate", 101, "ConstantLR", oneof="learning_rate"),
    F("exponential_decay_learning_rate", 102, "ExponentialDecayLR", oneof="learning_rate"),
    F("manual_step_learning_rate", 103, "ManualStepLR", oneof="learning_rate"),
    F("cosine_annealing_learning_rate", 104, "CosineAnnealingLR", oneof="learning_rate"),
)


def _optimizer(name: str, *fields: F) -> Msg:
    return msg(name, F("lr", 1, "float", default=0.002), *fields)


#: the messages, ``EasyRecConfig`` (the pipeline) first
MESSAGES = [
    msg(
        "EasyRecConfig",
        F("train_input_path", 1, "string"),
        F("eval_input_path", 2, "string"),
        F("model_dir", 3, "string"),
        F("train_config", 4, "TrainConfig"),
        F("eval_config", 5, "EvalConfig"),
        F("export_config", 6, "ExportConfig"),
        F("data_config", 7, "DataConfig"),
        rep("feature_configs", 8, "FeatureConfig"),
        F("model_config", 9, "ModelConfig"),
    ),
    # train.proto
    msg(
        "TrainConfig",
        F("sparse_optimizer", 1, "SparseOptimizer"),
        F("dense_optimizer", 2, "DenseOptimizer"),
        F("num_steps", 3, "uint32"),
        F("num_epochs", 4, "uint32"),
        F("save_checkpoints_steps", 5, "uint32", default=1000),
        F("fine_tune_checkpoint", 6, "string"),
        F("fine_tune_ckpt_param_map", 7, "string"),
        F("log_step_count_steps", 8, "uint32", default=100),
        F("is_profiling", 9, "bool", default=False),
        F("use_tensorboard", 10, "bool", default=True),
        F("save_checkpoints_epochs", 11, "uint32"),
        rep("tensorboard_summaries", 12, "string"),
        F("cudnn_allow_tf32", 13, "bool", default=True),
        F("cuda_matmul_allow_tf32", 14, "bool", default=False),
        F("mixed_precision", 16, "string"),
        F("gradient_accumulation_steps", 18, "uint32"),
        F("grad_clipping", 19, "GradClipping"),
        F("keep_checkpoint_max", 20, "uint32", default=0),
    ),
    msg(
        "GradClipping",
        F("clipping_type", 1, "string", default="none"),
        F("max_gradient", 2, "float", default=1.0),
        F("norm_type", 3, "float", default=2.0),
        F("enable_global_grad_clip", 4, "bool", default=False),
    ),
    # optimizer.proto
    msg(
        "SparseOptimizer",
        F("sgd_optimizer", 1, "FusedSGDOptimizer", oneof="optimizer"),
        F("adagrad_optimizer", 2, "FusedAdagradOptimizer", oneof="optimizer"),
        F("adam_optimizer", 3, "FusedAdamOptimizer", oneof="optimizer"),
        F("partial_rowwise_adam_optimizer", 7, "FusedPartialRowWiseAdamOptimizer", oneof="optimizer"),
        F("rowwise_adagrad_optimizer", 8, "FusedRowWiseAdagradOptimizer", oneof="optimizer"),
        *_LEARNING_RATES,
    ),
    msg(
        "DenseOptimizer",
        F("sgd_optimizer", 1, "SGDOptimizer", oneof="optimizer"),
        F("adagrad_optimizer", 2, "AdagradOptimizer", oneof="optimizer"),
        F("adam_optimizer", 3, "AdamOptimizer", oneof="optimizer"),
        F("adamw_optimizer", 4, "AdamWOptimizer", oneof="optimizer"),
        *_LEARNING_RATES,
        F("ema", 202, "EMAConfig"),
    ),
    msg("EMAConfig", F("decay", 1, "float", default=0.999)),
    _optimizer(
        "FusedSGDOptimizer",
        F("gradient_clipping", 2, "bool", default=False),
        F("max_gradient", 3, "float", default=1.0),
    ),
    _optimizer(
        "FusedAdagradOptimizer",
        F("gradient_clipping", 2, "bool", default=False),
        F("max_gradient", 3, "float", default=1.0),
        F("initial_accumulator_value", 4, "float", default=0.0),
    ),
    *[
        _optimizer(
            name,
            F("beta1", 2, "float", default=0.9),
            F("beta2", 3, "float", default=0.999),
            F("weight_decay", 4, "float", default=0.0),
            F("gradient_clipping", 5, "bool", default=False),
            F("max_gradient", 6, "float", default=1.0),
        )
        for name in ("FusedAdamOptimizer", "FusedPartialRowWiseAdamOptimizer")
    ],
    _optimizer(
        "FusedRowWiseAdagradOptimizer",
        F("weight_decay", 2, "float", default=0.0),
        F("weight_decay_mode", 3, "WeightDecayMode", default="NONE"),
        F("gradient_clipping", 4, "bool", default=False),
        F("max_gradient", 5, "float", default=1.0),
    ),
    _optimizer(
        "SGDOptimizer",
        F("momentum", 2, "float", default=0.9),
        F("weight_decay", 3, "float", default=0.0),
        F("dampening", 4, "float", default=0.0),
        F("nesterov", 5, "bool", default=False),
        F("fused", 6, "bool", default=False),
    ),
    _optimizer(
        "AdagradOptimizer",
        F("weight_decay", 2, "float", default=0.0),
        F("initial_accumulator_value", 3, "float", default=0.0),
        F("eps", 4, "float", default=1e-10),
        F("fused", 5, "bool", default=False),
    ),
    *[
        _optimizer(
            name,
            F("beta1", 2, "float", default=0.9),
            F("beta2", 3, "float", default=0.999),
            F("weight_decay", 4, "float", default=0.0),
            F("eps", 5, "float", default=1e-8),
            F("amsgrad", 6, "bool", default=False),
            F("fused", 7, "bool", default=False),
        )
        for name in ("AdamOptimizer", "AdamWOptimizer")
    ],
    msg("ConstantLR"),
    msg(
        "ExponentialDecayLR",
        F("decay_size", 1, "uint32"),
        F("decay_factor", 2, "float", default=0.95),
        F("staircase", 3, "bool", default=True),
        F("warmup_learning_rate", 4, "float", default=0.0),
        F("warmup_size", 5, "uint32", default=0),
        F("min_learning_rate", 6, "float", default=0.0),
        F("by_epoch", 7, "bool", default=False),
    ),
    msg(
        "ManualStepLR",
        rep("schedule_sizes", 1, "uint32"),
        rep("learning_rates", 2, "float"),
        F("warmup", 3, "bool", default=False),
        F("by_epoch", 4, "bool", default=False),
    ),
    msg(
        "CosineAnnealingLR",
        F("T_max", 1, "uint32"),
        F("min_learning_rate", 2, "float", default=0.0),
        F("warmup_learning_rate", 3, "float", default=0.0),
        F("warmup_size", 4, "uint32", default=0),
        F("by_epoch", 5, "bool", default=False),
    ),
    # eval.proto, export.proto
    msg(
        "EvalConfig",
        F("num_steps", 1, "uint32"),
        F("log_step_count_steps", 2, "uint32", default=10),
        F("use_dense_ema", 3, "bool"),
    ),
    msg(
        "ExportConfig",
        F("exporter_type", 1, "string", default="latest"),
        F("best_exporter_metric", 2, "string", default="auc"),
        F("metric_larger_is_better", 3, "bool", default=True),
        F("mixed_precision", 4, "string", default=""),
        F("cudnn_allow_tf32", 5, "bool", default=True),
        F("cuda_matmul_allow_tf32", 6, "bool", default=False),
        F("use_dense_ema", 7, "bool"),
    ),
    # data.proto
    msg("Field", F("input_name", 1, "string"), F("input_type", 2, "FieldType")),
    msg(
        "DataConfig",
        F("batch_size", 1, "uint32", default=1024),
        F("dataset_type", 2, "DatasetType", default="OdpsDataset"),
        F("fg_encoded", 3, "bool", default=True),
        F("fg_encoded_multival_sep", 4, "string", default="\x03"),
        rep("label_fields", 5, "string"),
        F("num_workers", 6, "uint32", default=8),
        F("pin_memory", 7, "bool", default=True),
        rep("input_fields", 8, "Field"),
        F("delimiter", 9, "string", default=","),
        F("with_header", 10, "bool", default=False),
        F("eval_batch_size", 11, "uint32"),
        F("drop_remainder", 12, "bool", default=False),
        F("fg_threads", 13, "uint32", default=1),
        F("is_orderby_partition", 14, "bool", default=False),
        F("odps_data_quota_name", 15, "string", default="pay-as-you-go"),
        F("sample_mask_prob", 16, "float", default=0.0),
        F("negative_sample_mask_prob", 17, "float", default=0.0),
        F("force_base_data_group", 18, "bool", default=False),
        rep("sample_weight_fields", 19, "string"),
        F("fg_mode", 20, "FgMode", default="FG_NONE"),
        F("shuffle", 22, "bool", default=False),
        F("shuffle_buffer_size", 23, "uint32", default=32),
        F("odps_data_compression", 24, "string", default="LZ4_FRAME"),
        F("input_fields_str", 27, "string"),
        F("in_order", 28, "bool", default=True),
    ),
    # feature.proto
    _feature(
        "IdFeature",
        F("expression", 2, "string"),
        F("hash_bucket_size", 5, "uint64"),
        F("num_buckets", 6, "uint64"),
        rep("vocab_list", 7, "string"),
        rep("vocab_dict", 8, "IdFeature.VocabDictEntry"),
        F("value_dim", 9, "uint32"),
        F("pooling", 10, "string", default="sum"),
        F("default_value", 11, "string", default=""),
        F("separator", 12, "string", default="\x1d"),
        F("weighted", 13, "bool", default=False),
        F("use_mask", 15, "bool"),
        F("vocab_file", 17, "string"),
        F("asset_dir", 18, "string"),
        F("default_bucketize_value", 31, "uint64"),
        F("fg_value_type", 32, "string"),
        nested=(_VOCAB_DICT_ENTRY,),
    ),
    _feature(
        "RawFeature",
        F("expression", 2, "string"),
        rep("boundaries", 5, "float"),
        F("value_dim", 6, "uint32", default=1),
        F("normalizer", 7, "string"),
        F("pooling", 10, "string", default="sum"),
        F("default_value", 11, "string", default="0"),
        F("separator", 12, "string", default="\x1d"),
        F("init_fn", 13, "string"),
        F("use_mask", 14, "bool"),
        F("autodis", 40, "AutoDisEmbedding", oneof="dense_emb"),
        F("mlp", 41, "MLPEmbedding", oneof="dense_emb"),
    ),
    msg(
        "AutoDisEmbedding",
        F("num_channels", 2, "uint32"),
        F("temperature", 3, "float", default=0.1),
        F("keep_prob", 4, "float", default=0.8),
    ),
    msg("MLPEmbedding"),
    _feature(
        "ComboFeature",
        rep("expression", 2, "string"),
        F("hash_bucket_size", 5, "uint64"),
        rep("vocab_list", 7, "string"),
        F("value_dim", 9, "uint32", default=0),
        F("pooling", 10, "string", default="sum"),
        F("default_value", 11, "string", default=""),
        F("separator", 12, "string", default="\x1d"),
        F("init_fn", 13, "string"),
        F("use_mask", 14, "bool"),
        F("vocab_file", 16, "string"),
    ),
    msg(
        "SequenceFeature",
        F("sequence_name", 1, "string"),
        F("sequence_length", 2, "uint32"),
        F("sequence_delim", 3, "string", default=";"),
        F("sequence_pk", 4, "string"),
        rep("features", 5, "SeqFeatureConfig"),
    ),
    msg(
        "SeqFeatureConfig",
        F("id_feature", 1, "IdFeature", oneof="feature"),
        F("raw_feature", 2, "RawFeature", oneof="feature"),
        F("combo_feature", 3, "ComboFeature", oneof="feature"),
    ),
    msg(
        "FeatureConfig",
        F("id_feature", 1, "IdFeature", oneof="feature"),
        F("raw_feature", 2, "RawFeature", oneof="feature"),
        F("combo_feature", 3, "ComboFeature", oneof="feature"),
        F("sequence_feature", 6, "SequenceFeature", oneof="feature"),
        F("sequence_id_feature", 101, "IdFeature", oneof="feature"),
        F("sequence_raw_feature", 102, "RawFeature", oneof="feature"),
    ),
    # model.proto, seq_encoder.proto, module.proto
    msg(
        "FeatureGroupConfig",
        F("group_name", 1, "string"),
        rep("feature_names", 2, "string"),
        F("group_type", 3, "FeatureGroupType", default="DEEP"),
        rep("sequence_groups", 4, "SeqGroupConfig"),
        rep("sequence_encoders", 5, "SeqEncoderConfig"),
        F("embedding_name_suffix", 6, "string"),
    ),
    msg(
        "SeqGroupConfig",
        F("group_name", 1, "string"),
        rep("feature_names", 2, "string"),
        F("embedding_name_suffix", 3, "string"),
    ),
    msg(
        "SeqEncoderConfig",
        F("din_encoder", 1, "DINEncoder", oneof="seq_module"),
        F("simple_attention", 2, "SimpleAttention", oneof="seq_module"),
        F("pooling_encoder", 3, "PoolingEncoder", oneof="seq_module"),
    ),
    msg(
        "DINEncoder",
        F("name", 1, "string"),
        F("input", 2, "string"),
        F("attn_mlp", 3, "MLP"),
        F("max_seq_length", 6, "int32", default=0),
    ),
    msg("SimpleAttention", F("name", 1, "string"), F("input", 2, "string"), F("max_seq_length", 6, "int32", default=0)),
    msg(
        "PoolingEncoder",
        F("name", 1, "string"),
        F("input", 2, "string"),
        F("pooling_type", 3, "string", default="mean"),
        F("max_seq_length", 6, "int32", default=0),
    ),
    msg(
        "MLP",
        rep("hidden_units", 1, "uint32"),
        rep("dropout_ratio", 2, "float"),
        F("activation", 3, "string", default="nn.ReLU"),
        F("use_bn", 4, "bool", default=False),
        F("bias", 5, "bool", default=True),
        F("use_ln", 6, "bool", default=False),
    ),
    msg(
        "ExtractionNetwork",
        F("network_name", 1, "string"),
        F("expert_num_per_task", 2, "uint32"),
        F("share_num", 3, "uint32"),
        F("task_expert_net", 4, "MLP"),
        F("share_expert_net", 5, "MLP"),
    ),
    msg(
        "ModelConfig",
        rep("feature_groups", 1, "FeatureGroupConfig"),
        F("simple_multi_task", 200, "SimpleMultiTask", oneof="model"),
        F("mmoe", 201, "MMoE", oneof="model"),
        F("dbmtl", 202, "DBMTL", oneof="model"),
        F("ple", 203, "PLE", oneof="model"),
        F("pepnet", 206, "PEPNet", oneof="model"),
        F("num_class", 2, "uint32", default=1),
        rep("losses", 3, "LossConfig"),
        rep("metrics", 4, "MetricConfig"),
        rep("train_metrics", 5, "TrainMetricConfig"),
        F("kernel", 12, "Kernel", default="PYTORCH"),
        F("use_pareto_loss_weight", 13, "bool", default=False),
    ),
    # models/multi_task_rank.proto, tower.proto
    msg("SimpleMultiTask", rep("task_towers", 1, "TaskTower")),
    msg(
        "MMoE",
        F("expert_mlp", 1, "MLP"),
        F("gate_mlp", 2, "MLP"),
        F("num_expert", 3, "uint32", default=3),
        rep("task_towers", 4, "TaskTower"),
    ),
    msg(
        "DBMTL",
        F("bottom_mlp", 1, "MLP"),
        F("expert_mlp", 2, "MLP"),
        F("gate_mlp", 3, "MLP"),
        F("num_expert", 4, "uint32", default=3),
        rep("task_towers", 5, "BayesTaskTower"),
    ),
    msg("PLE", rep("extraction_networks", 1, "ExtractionNetwork"), rep("task_towers", 2, "TaskTower")),
    msg(
        "PEPNet",
        F("epnet_hidden_unit", 1, "uint32"),
        F("epnet_gamma", 2, "float", default=2.0),
        rep("ppnet_hidden_units", 3, "uint32"),
        F("ppnet_activation", 4, "string", default="nn.ReLU"),
        rep("ppnet_dropout_ratio", 5, "float"),
        F("ppnet_gamma", 6, "float", default=2.0),
        F("domain_input_name", 7, "string"),
        F("task_domain_num", 8, "uint32", default=1),
        rep("task_towers", 9, "TaskTower"),
    ),
    msg(
        "TaskTower",
        *_TOWER,
        F("sample_weight_name", 8, "string"),
        F("task_space_indicator_label", 9, "string"),
        F("in_task_space_weight", 10, "float", default=1.0),
        F("out_task_space_weight", 11, "float", default=1.0),
        F("pareto_min_loss_weight", 12, "float", default=0.0),
    ),
    msg(
        "BayesTaskTower",
        *_TOWER,
        rep("relation_tower_names", 8, "string"),
        F("relation_mlp", 9, "MLP"),
        F("sample_weight_name", 10, "string"),
        F("task_space_indicator_label", 11, "string"),
        F("in_task_space_weight", 12, "float", default=1.0),
        F("out_task_space_weight", 13, "float", default=1.0),
        F("pareto_min_loss_weight", 14, "float", default=0.0),
    ),
    # loss.proto, metric.proto
    msg(
        "LossConfig",
        F("binary_cross_entropy", 1, "BinaryCrossEntropy", oneof="loss"),
        F("softmax_cross_entropy", 2, "SoftmaxCrossEntropy", oneof="loss"),
        F("l2_loss", 3, "L2Loss", oneof="loss"),
        F("jrc_loss", 4, "JRCLoss", oneof="loss"),
        F("binary_focal_loss", 5, "BinaryFocalLoss", oneof="loss"),
    ),
    msg("BinaryCrossEntropy", F("label_smoothing", 1, "float", default=0.0)),
    msg("SoftmaxCrossEntropy", F("label_smoothing", 1, "float", default=0.0)),
    msg("L2Loss"),
    msg("JRCLoss", F("session_name", 1, "string"), F("alpha", 2, "float", default=0.5)),
    msg("BinaryFocalLoss", F("gamma", 1, "float", default=2.0), F("alpha", 2, "float", default=0.5)),
    msg(
        "MetricConfig",
        F("auc", 1, "AUC", oneof="metric"),
        F("multiclass_auc", 2, "MulticlassAUC", oneof="metric"),
        F("recall_at_k", 3, "RecallAtK", oneof="metric"),
        F("mean_absolute_error", 4, "MeanAbsoluteError", oneof="metric"),
        F("mean_squared_error", 5, "MeanSquaredError", oneof="metric"),
        F("accuracy", 6, "Accuracy", oneof="metric"),
        F("grouped_auc", 7, "GroupedAUC", oneof="metric"),
        F("xauc", 8, "XAUC", oneof="metric"),
        F("grouped_xauc", 9, "GroupedXAUC", oneof="metric"),
        F("normalized_entropy", 10, "NormalizedEntropy", oneof="metric"),
    ),
    msg(
        "TrainMetricConfig",
        F("auc", 1, "AUC", oneof="metric"),
        F("recall_at_k", 3, "RecallAtK", oneof="metric"),
        F("mean_absolute_error", 4, "MeanAbsoluteError", oneof="metric"),
        F("mean_squared_error", 5, "MeanSquaredError", oneof="metric"),
        F("accuracy", 6, "Accuracy", oneof="metric"),
        F("xauc", 8, "XAUC", oneof="metric"),
        F("decay_rate", 20, "float", default=0.9),
        F("decay_step", 21, "uint32", default=100),
    ),
    msg("AUC", F("thresholds", 1, "uint32", default=200)),
    msg("MulticlassAUC", F("thresholds", 1, "uint32", default=200), F("average", 2, "string", default="macro")),
    msg("RecallAtK", F("top_k", 1, "uint32", default=5)),
    *empty("MeanAbsoluteError", "MeanSquaredError"),
    msg("Accuracy", F("threshold", 1, "float", default=0.5), F("top_k", 2, "uint32", default=1)),
    msg("GroupedAUC", F("grouping_key", 1, "string")),
    msg(
        "XAUC",
        F("sample_ratio", 1, "float", default=1e-3),
        F("max_pairs", 2, "uint64"),
        F("in_batch", 3, "bool", default=False),
    ),
    msg("GroupedXAUC", F("grouping_key", 1, "string"), F("max_pairs_per_group", 2, "uint64", default=100)),
    msg("NormalizedEntropy", F("eta", 1, "float", default=1e-12)),
]
