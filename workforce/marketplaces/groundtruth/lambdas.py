"""AWS's own pre-annotation (``PRE-``) and consolidation (``ACS-``) Lambdas for built-in task types.

AWS publishes one function per task type in each supported region, all of a region under one account
(the list in the SageMaker API reference for ``PreHumanTaskLambdaArn`` and
``AnnotationConsolidationLambdaArn``); the ARN is ``arn:aws:lambda:<region>:<account>:function:<PRE|ACS>-<type>``.
"""

from __future__ import annotations

from workforce.marketplaces.base import MarketplaceError

REGION_ACCOUNTS: dict[str, str] = {
    "us-east-1": "432418664414",
    "us-east-2": "266458841044",
    "us-west-2": "081040173940",
    "ca-central-1": "918755190332",
    "eu-west-1": "568282634449",
    "eu-west-2": "487402164563",
    "eu-central-1": "203001061592",
    "ap-northeast-1": "477331159723",
    "ap-northeast-2": "845288260483",
    "ap-south-1": "565803892007",
    "ap-southeast-1": "377565633583",
    "ap-southeast-2": "454466003867",
}

BUILT_IN_TASK_TYPES = frozenset(
    {
        "BoundingBox",
        "ImageMultiClass",
        "ImageMultiClassMultiLabel",
        "SemanticSegmentation",
        "TextMultiClass",
        "TextMultiClassMultiLabel",
        "NamedEntityRecognition",
        "VideoMultiClass",
        "VideoObjectDetection",
        "VideoObjectTracking",
        "VerificationBoundingBox",
        "VerificationSemanticSegmentation",
        "AdjustmentBoundingBox",
        "AdjustmentSemanticSegmentation",
    }
)


def builtin_lambda_arns(task_type: str, region: str) -> tuple[str, str]:
    """``(pre-annotation ARN, consolidation ARN)`` of a built-in task type in ``region``."""
    account = REGION_ACCOUNTS.get(region)
    if account is None:
        raise MarketplaceError(
            f"Ground Truth's built-in Lambdas are not published for region {region!r}; "
            f"use one of: {', '.join(sorted(REGION_ACCOUNTS))}.",
            permanent=True,
            code="region",
        )
    if task_type not in BUILT_IN_TASK_TYPES:
        raise MarketplaceError(f"{task_type!r} is not a built-in Ground Truth task type.", permanent=True)
    base = f"arn:aws:lambda:{region}:{account}:function"
    return f"{base}:PRE-{task_type}", f"{base}:ACS-{task_type}"
