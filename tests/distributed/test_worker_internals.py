"""The Locust internals the remote-worker gate relies on (llmsoak.locust.internals, "master/worker")
still have the shape used: checked against the installed Locust, no processes."""

from __future__ import annotations

import inspect

from locust.runners import MasterRunner, WorkerNodes, WorkerRunner

from llmsoak.locust import internals


def test_client_ready_is_sent_by_connect_to_master_from_the_constructor():
    # the hello must precede it on the same connection: llmsoak patches connect_to_master
    assert "client_ready" in inspect.getsource(WorkerRunner.connect_to_master)
    assert "self.connect_to_master()" in inspect.getsource(WorkerRunner.__init__)
    assert "self.client = rpc.Client(" in inspect.getsource(WorkerRunner.__init__)


def test_the_master_dispatches_each_message_through_handle_message():
    assert list(inspect.signature(MasterRunner.handle_message).parameters) == ["self", "client_id", "msg"]
    assert "self.handle_message(client_id, msg)" in inspect.getsource(MasterRunner.client_listener)
    # custom messages from workers Locust does not know are still delivered (the join request)
    assert "self.custom_messages.get(msg.type)" in inspect.getsource(MasterRunner.handle_message)


def test_worker_nodes_expose_all_with_id_and_state():
    nodes = WorkerNodes()
    assert isinstance(type(nodes).all, property)

    class Runner:
        clients = nodes

    assert internals.worker_states(Runner()) == {}


def test_send_before_client_ready_is_idempotent(monkeypatch):
    monkeypatch.setattr(WorkerRunner, "connect_to_master", WorkerRunner.connect_to_master)  # restored after
    internals.send_before_client_ready(lambda cid: ("x", None))
    patched = WorkerRunner.connect_to_master
    internals.send_before_client_ready(lambda cid: ("y", None))
    assert WorkerRunner.connect_to_master is patched and patched._llmsoak_hello
