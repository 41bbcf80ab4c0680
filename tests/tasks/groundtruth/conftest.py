"""The Ground Truth tests' shared fixtures: moto S3 with a stubbed SageMaker client, and the birds job."""

from tests.tasks.groundtruth.test_end_to_end import aws, birds_job  # noqa: F401
