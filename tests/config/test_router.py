from django.db import transaction

from config import db_router
from config.db_router import PrimaryReplicaRouter

router = PrimaryReplicaRouter()


def test_reads_in_a_request_go_to_the_replica_until_the_first_write():
    token = db_router.start_request()
    try:
        assert router.db_for_read(None) == "replica"
        assert router.db_for_write(None) == "default"
        assert router.db_for_read(None) == "default"  # read-after-write stays on the primary
    finally:
        db_router.end_request(token)


def test_the_pin_does_not_leak_into_the_next_request():
    token = db_router.start_request()
    router.db_for_write(None)
    db_router.end_request(token)
    token = db_router.start_request()
    try:
        assert router.db_for_read(None) == "replica"
    finally:
        db_router.end_request(token)


def test_reads_outside_requests_use_the_primary():
    assert router.db_for_read(None) == "default"


def test_reads_inside_a_transaction_use_the_primary(db):
    token = db_router.start_request()
    try:
        with transaction.atomic():
            assert router.db_for_read(None) == "default"
    finally:
        db_router.end_request(token)


def test_migrations_run_on_the_primary_only():
    assert router.allow_migrate("default", "media_app")
    assert not router.allow_migrate("replica", "media_app")
