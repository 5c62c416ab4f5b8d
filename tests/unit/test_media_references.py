"""The media references of stored runs, found exactly where agno 3.1.10 finds them.

Each run is built from agno's own objects, every media object carrying an agno ``MediaReference``
with a key of its own, and serialized with ``to_dict()`` (what agno's ``upsert_run`` stores). Our
walk of that dict must give the keys agno's ``iter_run_media`` gives for the run agno reads back
from it (``from_dict``), in the same order; deletion and backend matching are compared with
agno's ``session_media_keys`` and ``reference_matches_storage`` the same way.
"""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

import pytest
from agno.media import Audio, File, Image, Video
from agno.media.reference import MediaReference
from agno.media.storage.gcs import GCSMediaStorage
from agno.media.storage.local import LocalMediaStorage
from agno.media.storage.s3 import S3MediaStorage
from agno.models.message import Message
from agno.models.response import ToolExecution
from agno.run.agent import RunInput, RunOutput
from agno.run.team import TeamRunInput, TeamRunOutput
from agno.run.workflow import WorkflowRunOutput
from agno.utils import media_offload
from agno.workflow.types import StepInput, StepOutput, StepRequirement

from agentos_sessions.persistence.media.references import (
    find_reference,
    references_of_run,
    served_by,
    session_media_keys,
)
from agentos_sessions.settings import MediaStorageSettings

pytestmark = pytest.mark.interop

SESSION = "session-1"
BUCKET = "media-bucket"


def reference(name: str, **fields) -> MediaReference:
    """agno's reference to the object ``agno/media/<name>`` (an S3 one unless ``fields`` say otherwise)."""
    values = {
        "media_id": f"id-{name}",
        "storage_key": f"agno/media/{name}",
        "session_id": SESSION,
        "storage_backend": "s3",
        "bucket": BUCKET,
        **fields,
    }
    return MediaReference(**values)


def image(name: str, **fields) -> Image:
    return Image(media_reference=reference(name, **fields))


def audio(name: str, **fields) -> Audio:
    return Audio(media_reference=reference(name, **fields))


def video(name: str, **fields) -> Video:
    return Video(media_reference=reference(name, **fields))


def file(name: str, **fields) -> File:
    return File(media_reference=reference(name, **fields))


def message(**media) -> Message:
    return Message(role="user", content="look", **media)


def keys(*names: str) -> list[str]:
    return [f"agno/media/{name}" for name in names]


def our_keys(stored: dict, *, workflow: bool = False) -> list[str]:
    """The keys we find on a stored run (a workflow session's, if ``workflow``)."""
    return [found["storage_key"] for found in references_of_run(stored, workflow=workflow)]


def agnos_keys(run_class, stored: dict) -> list[str]:
    """The keys agno finds on the run it reads back from the stored dict (``from_dict`` consumes its argument)."""
    run = run_class.from_dict(copy.deepcopy(stored))
    return [
        media.media_reference.storage_key
        for media in media_offload.iter_run_media(run)
        if getattr(media, "media_reference", None) is not None
    ]


def agent_run() -> RunOutput:
    """An agent's run with media in every place agno looks on one."""
    return RunOutput(
        run_id="agent-run",
        agent_id="agent",
        session_id=SESSION,
        input=RunInput(
            input_content="describe these",
            images=[image("input-image.png")],
            videos=[video("input-video.mp4")],
            audios=[audio("input-audio.wav")],
            files=[file("input-file.pdf")],
        ),
        messages=[
            message(
                images=[image("message-image.png")],
                videos=[video("message-video.mp4")],
                audio=[audio("message-audio.wav")],
                files=[file("message-file.pdf")],
            ),
            Message(role="assistant", content="here", audio_output=audio("message-audio-output.wav")),
        ],
        images=[image("output-image.png")],
        videos=[video("output-video.mp4")],
        audio=[audio("output-audio.wav")],
        files=[file("output-file.pdf")],
        response_audio=audio("response-audio.wav"),
        additional_input=[message(images=[image("additional-input-image.png")])],
        reasoning_messages=[message(files=[file("reasoning-file.pdf")])],
    )


AGENT_RUN_KEYS = keys(
    "input-image.png",
    "input-video.mp4",
    "input-audio.wav",
    "input-file.pdf",
    "message-image.png",
    "message-video.mp4",
    "message-audio.wav",
    "message-file.pdf",
    "message-audio-output.wav",
    "output-image.png",
    "output-video.mp4",
    "output-audio.wav",
    "output-file.pdf",
    "response-audio.wav",
    "additional-input-image.png",
    "reasoning-file.pdf",
)


def test_an_agent_runs_references_are_agnos_in_agnos_order():
    stored = agent_run().to_dict()
    assert (our_keys(stored), agnos_keys(RunOutput, stored)) == (AGENT_RUN_KEYS, AGENT_RUN_KEYS)


def test_a_team_runs_references_include_its_members_runs_as_agno_reads_them():
    member_agent = RunOutput(
        run_id="member-agent-run",
        agent_id="member-agent",
        images=[image("member-image.png")],
        messages=[Message(role="assistant", content="ok", audio_output=audio("member-audio-output.wav"))],
    )
    member_team = TeamRunOutput(
        run_id="member-team-run",
        team_id="member-team",
        videos=[video("member-team-video.mp4")],
        member_responses=[RunOutput(run_id="nested-member-run", agent_id="nested", files=[file("nested-file.pdf")])],
    )
    team = TeamRunOutput(
        run_id="team-run",
        team_id="team",
        session_id=SESSION,
        input=TeamRunInput(
            input_content="go", images=[image("team-input-image.png")], audios=[audio("team-input.wav")]
        ),
        messages=[message(images=[image("team-message-image.png")])],
        images=[image("team-output-image.png")],
        response_audio=audio("team-response-audio.wav"),
        additional_input=[message(videos=[video("team-additional-video.mp4")])],
        reasoning_messages=[message(audio=[audio("team-reasoning-audio.wav")])],
        member_responses=[member_agent, member_team],
    )
    expected = keys(
        "team-input-image.png",
        "team-input.wav",
        "team-message-image.png",
        "team-output-image.png",
        "team-response-audio.wav",
        "team-additional-video.mp4",
        "team-reasoning-audio.wav",
        "member-audio-output.wav",
        "member-image.png",
        "member-team-video.mp4",
        "nested-file.pdf",
    )
    stored = team.to_dict()
    assert (our_keys(stored), agnos_keys(TeamRunOutput, stored)) == (expected, expected)


def workflow_run() -> WorkflowRunOutput:
    """A workflow's run with media on itself, on nested and listed steps, on a paused step's
    requirement, on the agent, team and workflow runs its steps ran, and on its workflow agent."""
    container = StepOutput(
        step_name="container",
        files=[file("container-file.pdf")],
        steps=[
            StepOutput(step_name="child", images=[image("child-image.png")]),
            StepOutput(
                step_name="child-container",
                audio=[audio("child-audio.wav")],
                steps=[StepOutput(step_name="grandchild", videos=[video("grandchild-video.mp4")])],
            ),
        ],
    )
    parallel = [
        StepOutput(step_name="parallel-1", images=[image("parallel-1.png")]),
        StepOutput(step_name="parallel-2", files=[file("parallel-2.pdf")]),
    ]
    requirement = StepRequirement(
        step_id="review",
        step_input=StepInput(
            input="review this",
            images=[image("requirement-input-image.png")],
            previous_step_outputs={
                "draft": StepOutput(
                    step_name="draft",
                    files=[file("previous-file.pdf")],
                    steps=[StepOutput(step_name="draft-child", images=[image("previous-child-image.png")])],
                )
            },
        ),
        step_output=StepOutput(
            step_name="review",
            audio=[audio("requirement-output-audio.wav")],
            steps=[StepOutput(step_name="review-child", videos=[video("requirement-child-video.mp4")])],
        ),
    )
    return WorkflowRunOutput(
        run_id="workflow-run",
        workflow_id="workflow",
        workflow_name="workflow",
        session_id=SESSION,
        input="make a report",
        images=[image("workflow-image.png")],
        videos=[video("workflow-video.mp4")],
        audio=[audio("workflow-audio.wav")],
        files=[file("workflow-file.pdf")],
        response_audio=audio("workflow-response-audio.wav"),
        step_results=[container, parallel],
        step_requirements=[requirement],
        step_executor_runs=[
            RunOutput(run_id="executor-agent-run", agent_id="writer", images=[image("executor-agent-image.png")]),
            TeamRunOutput(
                run_id="executor-team-run",
                team_id="editors",
                files=[file("executor-team-file.pdf")],
                member_responses=[
                    RunOutput(run_id="executor-member-run", agent_id="editor", audio=[audio("executor-member.wav")])
                ],
            ),
            WorkflowRunOutput(
                run_id="nested-workflow-run",
                workflow_id="nested",
                workflow_name="nested",
                parent_run_id="workflow-run",
                images=[image("nested-workflow-image.png")],
                step_results=[StepOutput(step_name="nested-step", files=[file("nested-step-file.pdf")])],
            ),
        ],
        workflow_agent_run=RunOutput(
            run_id="workflow-agent-run",
            agent_id="workflow-agent",
            messages=[message(images=[image("workflow-agent-message-image.png")])],
        ),
    )


WORKFLOW_RUN_KEYS = keys(
    "workflow-image.png",
    "workflow-video.mp4",
    "workflow-audio.wav",
    "workflow-file.pdf",
    "workflow-response-audio.wav",
    "container-file.pdf",
    "child-image.png",
    "child-audio.wav",
    "grandchild-video.mp4",
    "parallel-1.png",
    "parallel-2.pdf",
    "requirement-input-image.png",
    "previous-file.pdf",
    "previous-child-image.png",
    "requirement-output-audio.wav",
    "requirement-child-video.mp4",
    "executor-agent-image.png",
    "executor-team-file.pdf",
    "executor-member.wav",
    "nested-workflow-image.png",
    "nested-step-file.pdf",
    "workflow-agent-message-image.png",
)


def test_a_workflow_runs_references_include_steps_requirements_and_executor_runs_as_agno_reads_them():
    stored = workflow_run().to_dict()
    assert (our_keys(stored, workflow=True), agnos_keys(WorkflowRunOutput, stored)) == (
        WORKFLOW_RUN_KEYS,
        WORKFLOW_RUN_KEYS,
    )


def test_a_workflows_own_input_is_not_run_media_as_agno_reads_it():
    """A workflow's input is the caller's value (str, dict, model), not a RunInput: agno never
    walks it, even when it is a dict with an "images" list."""
    run = WorkflowRunOutput(
        run_id="workflow-run",
        workflow_id="workflow",
        workflow_name="workflow",
        input={"images": [image("workflow-input-image.png").to_dict()], "topic": "cats"},
        images=[image("workflow-image.png")],
    )
    stored = run.to_dict()
    expected = keys("workflow-image.png")
    assert (our_keys(stored, workflow=True), agnos_keys(WorkflowRunOutput, stored)) == (expected, expected)


def test_references_where_agno_does_not_look_are_not_found():
    """A tool's arguments and result, the run's metadata and content, a message's image_output."""
    tool_image = image("tool-image.png").to_dict()
    run = RunOutput(
        run_id="agent-run",
        agent_id="agent",
        content={"images": [image("content-image.png").to_dict()]},
        metadata={"images": [image("metadata-image.png").to_dict()], "media_reference": tool_image["media_reference"]},
        tools=[ToolExecution(tool_name="draw", tool_args={"images": [tool_image]}, result=json.dumps(tool_image))],
        messages=[
            Message(role="tool", content=json.dumps(tool_image), tool_args={"images": [tool_image]}),
            Message(role="assistant", content="drawn", image_output=image("image-output.png")),
        ],
        images=[image("output-image.png")],
    )
    stored = run.to_dict()
    assert (our_keys(stored), agnos_keys(RunOutput, stored)) == (keys("output-image.png"), keys("output-image.png"))


def test_a_run_without_media_has_no_references():
    stored = RunOutput(run_id="agent-run", agent_id="agent", content="hello", messages=[message()]).to_dict()
    assert (our_keys(stored), agnos_keys(RunOutput, stored)) == ([], [])


@pytest.mark.parametrize("stored", [None, "run", [], {"images": "not a list"}, {"images": ["not a dict", 3]}])
def test_what_is_not_a_stored_run_has_no_references(stored):
    assert our_keys(stored) == []


def test_a_reference_without_a_key_or_backend_is_not_one():
    stored = {
        "images": [
            {"media_reference": {"storage_backend": "s3", "bucket": BUCKET}},
            {"media_reference": {"storage_key": 7, "storage_backend": "s3"}},
            {"media_reference": {"storage_key": "agno/media/no-backend.png"}},
            {"media_reference": "agno/media/a-string.png"},
            {"media_reference": reference("kept.png").to_dict()},
        ]
    }
    assert our_keys(stored) == keys("kept.png")


def test_find_reference_gives_the_first_runs_reference_to_the_key():
    first = RunOutput(run_id="first", agent_id="agent", images=[image("shared.png", size=10)]).to_dict()
    second = RunOutput(run_id="second", agent_id="agent", images=[image("shared.png", size=20)]).to_dict()
    assert find_reference([first, second], "agno/media/shared.png") == {
        "media_id": "id-shared.png",
        "storage_key": "agno/media/shared.png",
        "session_id": SESSION,
        "storage_backend": "s3",
        "bucket": BUCKET,
        "size": 10,
    }


def test_find_reference_ignores_a_key_named_only_where_agno_does_not_look():
    tool_image = image("tool-image.png").to_dict()
    stored = RunOutput(
        run_id="agent-run", agent_id="agent", metadata={"image": tool_image}, images=[image("output-image.png")]
    ).to_dict()
    assert find_reference([stored], "agno/media/tool-image.png") is None
    assert find_reference([stored], "agno/media/output-image.png") == reference("output-image.png").to_dict()


def test_find_reference_of_an_absent_key_is_none():
    assert find_reference([agent_run().to_dict(), None], "agno/media/absent.png") is None


@pytest.fixture
def local_directory(tmp_path):
    directory = tmp_path / "media"
    directory.mkdir()
    return directory


def deletion_runs(local_directory) -> list[dict]:
    """A session's runs naming objects it uploaded, objects another session uploaded, and
    objects on other backends."""
    local = {"storage_backend": "local", "bucket": str(local_directory.resolve())}
    return [
        RunOutput(
            run_id="run-1",
            agent_id="agent",
            input=RunInput(input_content="x", images=[image("own-s3.png"), image("own-local.png", **local)]),
            images=[
                image("inherited-s3.png", session_id="another-session"),
                image("inherited-local.png", session_id="another-session", **local),
                image("no-session.png", session_id=None),
            ],
        ).to_dict(),
        TeamRunOutput(
            run_id="run-2",
            team_id="team",
            files=[
                file("own-other-bucket.pdf", bucket="other-bucket"),
                file("own-eu.pdf", region="eu-west-1"),
                file("own-us.pdf", region="us-east-1"),
                file("own-gcs.pdf", storage_backend="gcs"),
                file("own-other-directory.pdf", storage_backend="local", bucket="/srv/elsewhere"),
            ],
            # The same object named twice (a member's run repeats it): agno lists it twice too.
            member_responses=[RunOutput(run_id="run-3", agent_id="member", images=[image("own-s3.png")])],
        ).to_dict(),
    ]


def agnos_session_media_keys(runs: list[dict], storage) -> list[str]:
    loaded = [(TeamRunOutput if "team_id" in run else RunOutput).from_dict(copy.deepcopy(run)) for run in runs]
    return media_offload.session_media_keys(SimpleNamespace(runs=loaded), [SESSION], storage)


def storages(directory) -> dict[str, tuple[MediaStorageSettings, object]]:
    """The same storage on each backend, as our settings and as agno's storage object."""
    urls_and_agnos = {
        "local": (str(directory), LocalMediaStorage(str(directory))),
        "local-as-file-url": (f"file://{directory}", LocalMediaStorage(str(directory))),
        "s3": (f"s3://{BUCKET}", S3MediaStorage(BUCKET)),
        "s3-eu": (f"s3://{BUCKET}?region=eu-west-1", S3MediaStorage(BUCKET, region="eu-west-1")),
        "s3-us": (f"s3://{BUCKET}?region=us-east-1", S3MediaStorage(BUCKET, region="us-east-1")),
        "s3-other-bucket": ("s3://other-bucket", S3MediaStorage("other-bucket")),
        "gcs": (f"gs://{BUCKET}", GCSMediaStorage(BUCKET)),
    }
    return {
        name: (MediaStorageSettings.from_url(url, source="test"), agnos)
        for name, (url, agnos) in urls_and_agnos.items()
    }


STORAGE_NAMES = ["local", "local-as-file-url", "s3", "s3-eu", "s3-us", "s3-other-bucket", "gcs"]


@pytest.mark.parametrize(
    ("storage", "expected"),
    [
        ("s3", ["own-s3.png", "own-eu.pdf", "own-us.pdf", "own-s3.png"]),
        ("s3-eu", ["own-s3.png", "own-eu.pdf", "own-s3.png"]),
        ("s3-other-bucket", ["own-other-bucket.pdf"]),
        ("gcs", ["own-gcs.pdf"]),
        ("local", ["own-local.png"]),
    ],
)
def test_session_media_keys_are_the_sessions_own_on_the_storage_as_agnos(local_directory, storage, expected):
    runs = deletion_runs(local_directory)
    ours, agnos = storages(local_directory)[storage]
    assert (session_media_keys(runs, SESSION, ours), agnos_session_media_keys(runs, agnos)) == (
        keys(*expected),
        keys(*expected),
    )


def test_session_media_keys_of_another_session_are_none_of_these():
    runs = [RunOutput(run_id="run", agent_id="agent", images=[image("own.png")]).to_dict()]
    settings = MediaStorageSettings.from_url(f"s3://{BUCKET}", source="test")
    assert session_media_keys(runs, "another-session", settings) == []


def test_a_reference_with_an_empty_key_is_not_a_session_media_key_as_agnos():
    images = [image("own.png"), image("empty", storage_key="")]
    runs = [RunOutput(run_id="run", agent_id="agent", images=images).to_dict()]
    settings = MediaStorageSettings.from_url(f"s3://{BUCKET}", source="test")
    expected = keys("own.png")
    assert (session_media_keys(runs, SESSION, settings), agnos_session_media_keys(runs, S3MediaStorage(BUCKET))) == (
        expected,
        expected,
    )


def references_to_match(directory) -> dict[str, dict]:
    """A reference from each backend, bucket and region combination."""
    found = {}
    for backend in ("local", "s3", "gcs", "azure"):
        for bucket in (str(directory.resolve()), BUCKET, "other-bucket", None):
            for region in (None, "", "eu-west-1", "us-east-1"):
                fields = {"storage_backend": backend, "bucket": bucket, "region": region}
                found[f"{backend}/{bucket}/{region}"] = reference("object.png", **fields).to_dict()
    return found


@pytest.mark.parametrize("storage", STORAGE_NAMES)
def test_served_by_agrees_with_agnos_reference_matches_storage(local_directory, storage):
    ours, theirs = storages(local_directory)[storage]
    candidates = references_to_match(local_directory)
    our_matches = sorted(name for name, found in candidates.items() if served_by(found, ours))
    agnos_matches = sorted(
        name
        for name, found in candidates.items()
        if media_offload.reference_matches_storage(MediaReference.from_dict(found), theirs)
    )
    assert our_matches == agnos_matches
    assert our_matches  # each storage serves some of them: the comparison is not vacuous


def test_served_by_requires_backend_and_bucket_and_a_region_both_name_to_agree():
    eu = MediaStorageSettings.from_url(f"s3://{BUCKET}?region=eu-west-1", source="test")
    assert [
        served_by({"storage_backend": "s3", "bucket": BUCKET}, eu),
        served_by({"storage_backend": "s3", "bucket": BUCKET, "region": "eu-west-1"}, eu),
        served_by({"storage_backend": "s3", "bucket": BUCKET, "region": "us-east-1"}, eu),
        served_by({"storage_backend": "s3", "bucket": "other-bucket"}, eu),
        served_by({"storage_backend": "gcs", "bucket": BUCKET}, eu),
        served_by({"bucket": BUCKET}, eu),
    ] == [True, True, False, False, False, False]


def test_an_agent_run_read_as_a_workflows_has_only_what_agno_reads_on_a_workflow_run():
    """?type=workflow on an agent's session: agno reads its runs as workflow runs, which have no
    input media lists, messages or members."""
    stored = agent_run().to_dict()
    ours, agnos = our_keys(stored, workflow=True), agnos_keys(WorkflowRunOutput, stored)
    assert ours == agnos
    assert 0 < len(ours) < len(AGENT_RUN_KEYS)


def test_runs_nested_deeper_than_any_agno_writes_are_read_no_further():
    run = {"run_id": "0", "images": [image("0.png").to_dict()]}
    innermost = run
    for level in range(1, 2000):
        member = {"run_id": str(level), "images": [image(f"{level}.png").to_dict()]}
        innermost["member_responses"] = [member]
        innermost = member
    assert our_keys(run) == keys(*(f"{level}.png" for level in range(33)))
