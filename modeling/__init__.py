"""The MultiTaskBert model: config, model and pipeline, registered with the transformers Auto classes."""

from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoModelForTokenClassification
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_multitask_bert import MultiTaskBertConfig
from .modeling_multitask_bert import (
    MultiTaskBertForSequenceClassification,
    MultiTaskBertForTokenClassification,
    MultiTaskBertModel,
    MultiTaskBertOutput,
    MultiTaskBertPreTrainedModel,
    default_backbone_path,
)
from .pipeline_multitask_bert import PIPELINE_TASK, JointIntentNerPipeline

AutoConfig.register(MultiTaskBertConfig.model_type, MultiTaskBertConfig, exist_ok=True)
AutoModel.register(MultiTaskBertConfig, MultiTaskBertModel, exist_ok=True)
AutoModelForSequenceClassification.register(MultiTaskBertConfig, MultiTaskBertForSequenceClassification, exist_ok=True)
AutoModelForTokenClassification.register(MultiTaskBertConfig, MultiTaskBertForTokenClassification, exist_ok=True)
# `save_pretrained` then writes `auto_map` and copies the modeling files, so the model loads as remote code.
MultiTaskBertConfig.register_for_auto_class()
MultiTaskBertModel.register_for_auto_class("AutoModel")
MultiTaskBertForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
MultiTaskBertForTokenClassification.register_for_auto_class("AutoModelForTokenClassification")
PIPELINE_REGISTRY.register_pipeline(
    PIPELINE_TASK, pipeline_class=JointIntentNerPipeline, pt_model=AutoModel, type="text"
)

__all__ = [
    "JointIntentNerPipeline",
    "MultiTaskBertConfig",
    "MultiTaskBertForSequenceClassification",
    "MultiTaskBertForTokenClassification",
    "MultiTaskBertModel",
    "MultiTaskBertOutput",
    "MultiTaskBertPreTrainedModel",
    "default_backbone_path",
]
