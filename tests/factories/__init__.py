"""factory_boy factories for the domain model. Jobs are created through plain model rows here;
tests of the services that create them call those services directly."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from tasks.models import Item, Job, JobState, TaskKind
from tasks.services.imports import payload_hash
from workforce.models import Marketplace, Worker


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests")


class WorkerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Worker

    marketplace = Marketplace.INTERNAL
    user = factory.SubFactory(UserFactory)
    external_id = factory.LazyAttribute(lambda w: f"user-{w.user.pk}" if w.user else f"ext-{id(w)}")
    display_name = factory.LazyAttribute(lambda w: w.user.username if w.user else "")


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Job

    name = factory.Sequence(lambda n: f"Job {n}")
    task_kind = TaskKind.TEXT_CLASSIFICATION
    labels = factory.LazyFunction(lambda: ["pos", "neg", "neutral"])
    redundancy = 3
    reward = Decimal("0.05")
    assignment_duration = timedelta(minutes=10)
    state = JobState.DRAFT


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item

    job = factory.SubFactory(JobFactory)
    external_id = factory.Sequence(lambda n: f"item-{n}")
    payload = factory.LazyAttribute(lambda i: {"text": f"text of {i.external_id}"})
    payload_hash = factory.LazyAttribute(lambda i: payload_hash(i.payload))
