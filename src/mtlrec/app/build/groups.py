"""Config → how feature groups reach the architecture: its input groups, and the groups it reads by role."""

from __future__ import annotations

from mtlrec.architectures import ARCHITECTURES
from mtlrec.config import Config
from mtlrec.config.features import is_dense
from mtlrec.errors import ConfigError
from mtlrec.features import FeaturePipeline

#: Feature kinds that give one id per row (what a group read as ids may hold).
SINGLE_ID_KINDS = ("categorical", "cross", "numeric")


def architecture_roles(config: Config) -> dict[str, str]:
    """{role: how it is read} for the groups the architecture reads besides its input (star: domain → ids)."""
    return dict(ARCHITECTURES[config.model.architecture].group_inputs)


def model_input_groups(config: Config) -> list[str]:
    """The groups concatenated into the architecture's input (``model.input_groups``, by default every
    group not read by role)."""
    roles = architecture_roles(config)
    groups = config.model.input_groups or [name for name in config.groups if name not in roles]
    unknown = [name for name in groups if name not in config.groups]
    if unknown:
        raise ConfigError(f"model.input_groups: unknown group(s) {unknown}; the groups are {list(config.groups)}")
    if not groups:
        raise ConfigError("model.input_groups: no group is left for the architecture's input")
    return groups


def check_groups(config: Config) -> None:
    """Every role the architecture reads names a group fit for it; the input groups exist."""
    model_input_groups(config)
    for role, how in architecture_roles(config).items():
        if how == "ids":
            _role_feature(config, role)
        elif role not in config.groups:
            raise ConfigError(
                f"feature_groups: architecture '{config.model.architecture}' reads the group '{role}' (its features' "
                f"embeddings); add it, e.g. feature_groups: {{all: ['*'], {role}: [FEATURE, ...]}}"
            )


def role_id_inputs(config: Config, pipeline: FeaturePipeline) -> dict[str, str]:
    """{group: the input of its one id feature} for the groups read as ids."""
    roles = architecture_roles(config)
    return {role: _role_feature(config, role) for role, how in roles.items() if how == "ids"}


def role_id_rows(config: Config, pipeline: FeaturePipeline) -> dict[str, int]:
    """{role: the number of ids} for the groups read as ids (the architecture's ``num_<role>s``)."""
    rows = {spec.name: spec.rows for spec in pipeline.inputs() if spec.rows is not None}
    return {role: rows[name] for role, name in role_id_inputs(config, pipeline).items()}


def _role_feature(config: Config, role: str) -> str:
    architecture = config.model.architecture
    members = config.groups.get(role)
    if members is None:
        raise ConfigError(
            f"feature_groups: architecture '{architecture}' reads the group '{role}' (one categorical feature); "
            f"add it, e.g. feature_groups: {{all: ['*'], {role}: [FEATURE]}}"
        )
    features = {feature.name: feature for feature in config.features}
    if len(members) != 1 or not _single_id(features[members[0]]):
        raise ConfigError(
            f"feature_groups.{role}: architecture '{architecture}' reads it as the ids of one categorical feature; "
            f"it holds {members}"
        )
    return members[0]


def _single_id(feature: object) -> bool:
    return feature.kind in SINGLE_ID_KINDS and not is_dense(feature)
