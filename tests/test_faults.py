"""Faults at scale: kill -9 and resume (the weights, the step and the epoch it goes on from), a restarted
multi-worker job (the plain multi-worker fit: its first start), corrupt records skipped and counted, an
inference killed mid-run. (The mirrored strategy: tests/test_gpu_script.py; NaN loss: tests/test_training.py.)"""
import glob
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import ENV, ROOT, finish_training, frame_config, free_ports, run_cli, start_training
from yt8m import datasets, distribute, evaluation, fileio, optimizers, rundir, training
from yt8m.backup import AtomicBackupAndRestore, backup_weights_path
from yt8m.config import Config
from yt8m.data import readers
from yt8m.errors import UserError


def _wait_for_epoch(process, metadata, epoch, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        if metadata.exists() and json.loads(metadata.read_text() or "{}").get("epoch", 0) >= epoch:
            return
        time.sleep(0.1)
    assert process.poll() is None, "training finished before it could be killed; make the run longer"
    raise AssertionError(f"no backup of epoch {epoch} within {timeout} s")


def _kill(process):
    process.send_signal(signal.SIGKILL)
    process.wait()


def _trainable(model):
    return [w.numpy() for w in model.trainable_weights]


def _tiny_model(seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_a_backup_save_torn_by_a_kill_leaves_the_previous_backup_restorable(tmp_path):
    x, y = np.ones((8, 3), np.float32), np.zeros((8, 2), np.float32)
    model = _tiny_model(0)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[AtomicBackupAndRestore(str(tmp_path), delete_checkpoint=False)])
    saved = [w.numpy() for w in model.weights]
    # Killed inside the next save: its weights file half written, the metadata not switched yet.
    (tmp_path / "epoch-3-batch-0.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(88))
    assert json.loads((tmp_path / "training_metadata.json").read_text())["epoch"] == 2

    restored = _tiny_model(1)
    history = restored.fit(x, y, epochs=2, verbose=0,
                           callbacks=[AtomicBackupAndRestore(str(tmp_path), delete_checkpoint=False)])
    assert history.epoch == [], "resumed after epoch 2, nothing left to train"
    for got, want in zip(restored.weights, saved):
        np.testing.assert_array_equal(got.numpy(), want)


def test_a_killed_run_resumes_with_the_weights_of_its_backup(synthetic_data, tmp_path, capsys):
    run = tmp_path / "run"
    config = frame_config(synthetic_data, run, max_steps=60, steps_per_epoch=3)
    process = start_training(config, tmp_path)
    _wait_for_epoch(process, run / "backup" / "training_metadata.json", 2)
    _kill(process)
    killed_at = json.loads((run / "backup" / "training_metadata.json").read_text())["epoch"]
    backup = rundir.load_trained_model(str(run))
    backup.load_weights(backup_weights_path(str(run / "backup")))
    expected = _trainable(backup)

    # Resume at learning rate 0: Adam moves nothing, so the weights the run ends with are the
    # ones it restored; a restart from scratch would end at fresh initial weights instead.
    capsys.readouterr()
    resumed = training.train(config.replace(base_learning_rate=0.0, max_steps=(killed_at + 1) * 3))
    assert resumed.steps == (killed_at + 1) * 3   # one epoch more than the backup: it resumed
    log = capsys.readouterr().out
    assert f"resuming from step {killed_at * 3} (the backup of epoch {killed_at})" in log
    epochs = killed_at + 1
    assert f"Epoch {epochs}/{epochs}" in log and f"Epoch 1/{epochs}" not in log   # resumed, not restarted
    final = _trainable(rundir.load_trained_model(str(run)))
    for got, want in zip(final, expected):
        np.testing.assert_array_equal(got, want)
    keras.utils.set_random_seed(config.training.seed)
    fresh = training._initial_model(config)
    assert not all(np.array_equal(a, b) for a, b in zip(_trainable(fresh), expected))


def test_a_multi_worker_job_restarted_after_a_worker_dies_completes(synthetic_data, tmp_path):
    run = tmp_path / "run"
    config = frame_config(synthetic_data, run, strategy="multi_worker", max_steps=24, steps_per_epoch=3)
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]

    def start_workers():
        return [start_training(config, tmp_path, env={"TF_CONFIG": json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})}) for i in range(2)]

    chief, other = start_workers()
    _wait_for_epoch(chief, run / "backup" / "training_metadata.json", 1)
    _kill(other)      # a worker dies; the collectives of the chief cannot go on without it,
    _kill(chief)      # so the cluster manager restarts the job, as MultiWorkerMirroredStrategy expects
    killed_at = json.loads((run / "backup" / "training_metadata.json").read_text())["epoch"]
    results = [finish_training(p) for p in start_workers()]
    assert [(r["steps"], r["replicas"]) for r, _ in results] == [(24, 2), (24, 2)]
    chief_log = results[0][1]
    assert f"Epoch {killed_at + 1}/8" in chief_log and "Epoch 1/8" not in chief_log   # resumed, not restarted
    assert killed_at >= 1
    assert (run / "model.keras").exists()                     # the chief's
    assert (run / "workers" / "worker-1").is_dir()            # the other worker's scratch


def _corrupt_copy(source, destination):
    """A copy with 64 zero bytes in the middle; returns (index of the first damaged record, its offset,
    damaged records, their framed bytes)."""
    data = bytearray(open(source, "rb").read())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(64)
    open(destination, "wb").write(bytes(data))
    offset, damaged = 0, []
    for index, record in enumerate(tf.data.TFRecordDataset(source)):
        size = len(record.numpy()) + 16   # 8 length, 4 its CRC, the record, 4 its CRC
        if offset < middle + 64 and offset + size > middle:
            damaged.append((index, offset, size))
        offset += size
    return damaged[0][0], damaged[0][1], len(damaged), sum(size for _, _, size in damaged)


def test_case6_a_corrupt_record_names_the_file_the_record_and_its_offset(synthetic_data, tmp_path):
    first = sorted(glob.glob(synthetic_data.frame_train))[0]
    (tmp_path / "data").mkdir()
    broken = tmp_path / "data" / "a.tfrecord"
    index, offset, _, _ = _corrupt_copy(first, broken)
    config = frame_config(synthetic_data, tmp_path / "run", train_data_pattern=str(broken), max_steps=None)
    with pytest.raises(UserError) as error:
        with readers.data_errors(config.data.train_data_pattern):
            for _ in datasets.training_dataset(config):
                pass
    assert str(error.value).startswith(f"{broken}: record {index + 1} (at byte {offset} of "
                                       f"{broken.stat().st_size}) is corrupt or truncated")


def test_case6_skip_corrupt_records_resumes_at_the_next_intact_record(synthetic_data, tmp_path):
    first, second = sorted(glob.glob(synthetic_data.frame_train))[:2]
    (tmp_path / "data").mkdir()
    _, _, damaged, damaged_bytes = _corrupt_copy(first, tmp_path / "data" / "a.tfrecord")
    shutil.copy(second, tmp_path / "data" / "b.tfrecord")
    in_first, in_second = (sum(1 for _ in tf.data.TFRecordDataset(f)) for f in (first, second))
    pattern = str(tmp_path / "data" / "*.tfrecord")
    config = frame_config(synthetic_data, tmp_path / "run", train_data_pattern=pattern)
    corrupt = readers.CorruptRecords()
    dataset = readers.frame_dataset(pattern, num_classes=config.data.num_classes, feature_spec=config.data.feature_spec,
                                    batch_size=16, corrupt_records=corrupt)
    assert sum(int(labels.shape[0]) for _, labels, _ in dataset) == in_first - damaged + in_second
    lost = corrupt.files[str(tmp_path / "data" / "a.tfrecord")]
    assert lost["regions"] == 1 and lost["lost_bytes"] == damaged_bytes
    assert lost["recovered"] > 0 and str(tmp_path / "data" / "b.tfrecord") not in corrupt.files
    assert (f"a.tfrecord: 1 corrupt stretch(es), {damaged_bytes} bytes lost, {lost['recovered']} intact records "
            f"read after them") in corrupt.report(pattern, "train_data_pattern")


def test_training_with_skip_corrupt_records_reports_the_count(synthetic_data, tmp_path, capsys):
    (tmp_path / "data").mkdir()
    _corrupt_copy(sorted(glob.glob(synthetic_data.frame_train))[0], tmp_path / "data" / "a.tfrecord")
    config = frame_config(synthetic_data, tmp_path / "run", train_data_pattern=str(tmp_path / "data" / "*"),
                          max_steps=None, num_epochs=1, skip_corrupt_records=True)
    result = training.train(config)
    assert result.steps > 0
    out = capsys.readouterr().out
    assert "--skip_corrupt_records skipped in --train_data_pattern" in out and "1 corrupt stretch(es)" in out


def _with_an_empty_video(source, destination, video_id=b"EMPTY01"):
    """A copy of `source` with a video of no frames (its feature lists present and empty) after its 4th record."""
    empty = tf.train.SequenceExample()
    empty.context.feature["id"].bytes_list.value.append(video_id)
    empty.context.feature["labels"].int64_list.value.append(3)
    for name in ("rgb", "audio"):
        empty.feature_lists.feature_list[name]   # noqa: B018 (present, no frames)
    records = [r.numpy() for r in tf.data.TFRecordDataset(source)]
    with tf.io.TFRecordWriter(str(destination)) as writer:
        for index, record in enumerate(records):
            writer.write(record)
            if index == 3:
                writer.write(empty.SerializeToString())
    return len(records)


@pytest.mark.parametrize("split, kind", [("frame_train", "frame"), ("frame_test", "segment_test"),
                                         ("frame_validate", "segment")])
def test_case4_a_video_with_no_frames_stops_naming_it_or_is_skipped_and_named(synthetic_data, tmp_path, split,
                                                                              kind):
    path = tmp_path / "with_empty.tfrecord"
    videos = _with_an_empty_video(sorted(glob.glob(getattr(synthetic_data, split)))[0], path)
    config = frame_config(synthetic_data, tmp_path / "run")
    options = dict(num_classes=config.data.num_classes, feature_spec=config.data.feature_spec, batch_size=16)
    with pytest.raises(UserError, match=f"video EMPTY01 in {path} has no 'rgb' frames .*--skip_corrupt_records"):
        with readers.data_errors(str(path)):
            for _ in readers.make_dataset(kind, str(path), **options):
                pass
    corrupt = readers.CorruptRecords()
    batches = list(readers.make_dataset(kind, str(path), corrupt_records=corrupt, **options))
    ids = np.concatenate([features["id"].numpy() for features, _, _ in batches])
    assert not [i for i in ids if i.startswith(b"EMPTY01")]
    if kind == "frame":
        assert len(ids) == videos
    assert corrupt.count == 1 and f"video EMPTY01 in {path}: no 'rgb' frames" in corrupt.report(str(path), "x")


def _read_until_output(process, seen: threading.Event):
    while process.stdout.read(1):
        seen.set()


def test_an_inference_killed_mid_run_leaves_no_csv_and_the_next_run_cleans_up(synthetic_data, tmp_path):
    run = tmp_path / "run"
    training.train(frame_config(synthetic_data, run, max_steps=2, steps_per_epoch=2))
    output = tmp_path / "submission.csv"
    args = [sys.executable, str(ROOT / "inference.py"), f"--train_dir={run}", "--segment_labels",
            f"--input_data_pattern={synthetic_data.frame_test}", f"--output_file={output}", "--batch_size=8"]
    process = subprocess.Popen(args, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    seen = threading.Event()
    threading.Thread(target=_read_until_output, args=(process, seen), daemon=True).start()
    assert seen.wait(120), "inference printed nothing"   # the progress bar: it is predicting
    _kill(process)
    assert not output.exists()
    # What a kill -9 inside the final write leaves: the writer's temporary file, named by its pid.
    stale = tmp_path / f"submission.csv.tmp-{process.pid}"
    stale.write_text("Class,Segments\n1,partial")
    config = Config.load(str(run / "config.json")).replace(
        segment_labels=True, input_data_pattern=synthetic_data.frame_test, output_file=str(output), batch_size=8)
    evaluation.write_submission(config, progress=False)   # the next run, in-process (faster)
    assert output.read_text().startswith("Class,Segments\n")
    assert not stale.exists() and not glob.glob(f"{output}.tmp-*")


def test_stale_temp_files_of_live_processes_are_kept(tmp_path):
    live = tmp_path / f"out.csv.tmp-{os.getpid()}"
    live.write_text("mine")
    dead = tmp_path / "out.csv.tmp-999999999"
    dead.write_text("theirs")
    dead_model = tmp_path / "model.keras.tmp-999999999.keras"
    dead_model.write_text("a killed save")
    assert sorted(fileio.remove_stale_temp_files(str(tmp_path))) == sorted([str(dead), str(dead_model)])
    assert live.exists() and not dead.exists() and not dead_model.exists()


# ------------------------------------------------ issue 17: every failure one line, no run damaged


def _video_config(data, train_dir, **changes) -> Config:
    """A tiny video-level logistic run (the fastest model) on the session's synthetic data."""
    return Config.from_flags(train_data_pattern=data.video_train, num_classes=data.num_classes, batch_size=16,
                  max_steps=3, steps_per_epoch=3, base_learning_rate=1e-3, train_dir=str(train_dir)).replace(**changes)


def _files(directory) -> dict:
    """{relative path: bytes} of every file under `directory`."""
    root = pathlib.Path(directory)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_case1_segment_labels_on_unrated_files_is_one_error_not_a_hang(synthetic_data, tmp_path, monkeypatch):
    config = frame_config(synthetic_data, tmp_path / "fine", segment_labels=True)   # train files: no ratings
    with pytest.raises(UserError, match=r"train0000.tfrecord \(--train_data_pattern\) has no segment ratings"):
        datasets.training_dataset(config)
    # Past the first file's check (unrated files later in a pattern), the repeating reader stops too.
    monkeypatch.setattr(readers, "_check_first_records", lambda *args, **kwargs: None)
    started = time.time()
    with pytest.raises(UserError, match="no video of a batch has segment ratings"):
        with readers.data_errors(config.data.train_data_pattern):
            next(iter(datasets.training_dataset(config)))
    assert time.time() - started < 30


def test_case2_a_nan_keeps_the_last_finite_state_and_a_rerun_resumes_from_it(synthetic_data, tmp_path):
    run = tmp_path / "run"
    training.train(_video_config(synthetic_data, run))                      # epoch 1: a finite backup
    backup = run / "backup"
    finite = _files(backup)
    with pytest.raises(UserError, match="loss became") as error:
        training.train(_video_config(synthetic_data, run, base_learning_rate=1e30, clip_gradient_norm=0.0,
                                     max_steps=30))
    assert f"{run} keeps the last finite state, the backup of epoch 1 and its model.keras" in str(error.value)
    assert _files(backup) == finite                                          # no non-finite backup
    assert all(np.isfinite(w).all() for w in _trainable(rundir.load_trained_model(str(run))))
    resumed = training.train(_video_config(synthetic_data, run, max_steps=6))   # as the error advises
    assert resumed.steps == 6 and np.isfinite(resumed.final_loss)
    assert all(np.isfinite(w).all() for w in _trainable(rundir.load_trained_model(str(run))))


def test_case2_a_nan_before_any_backup_says_nothing_was_saved(synthetic_data, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(UserError, match=f"nothing was saved in {run}"):
        training.train(_video_config(synthetic_data, run, base_learning_rate=1e30, clip_gradient_norm=0.0,
                                     max_steps=30, steps_per_epoch=30))
    assert not run.exists()


def test_case2_a_backup_with_non_finite_weights_is_not_resumed(synthetic_data, tmp_path):
    run = tmp_path / "run"
    config = _video_config(synthetic_data, run)
    training.train(config)
    model = rundir.load_trained_model(str(run))
    model.compile(optimizer=optimizers.make_optimizer(config), loss="binary_crossentropy")
    model.optimizer.build(model.trainable_variables)
    model.trainable_weights[0].assign(np.full(model.trainable_weights[0].shape, np.nan, np.float32))
    model.save_weights(backup_weights_path(str(run / "backup")))   # what a run before the check backed up
    with pytest.raises(UserError, match="holds non-finite weights"):
        training.train(config.replace(max_steps=6))


def test_case3_another_model_or_bad_input_leaves_an_existing_run_untouched(synthetic_data, tmp_path):
    run = tmp_path / "run"
    training.train(_video_config(synthetic_data, run))
    before = _files(run)
    for change, message in [
            (dict(model="MoeModel"), r"holds another run \(--model=LogisticModel, not MoeModel\); give another "
                                     r"--train_dir, or --overwrite"),
            (dict(model_params={"l2_penalty": 0.5}), r"--model_params='', not 'l2_penalty=0.5'"),
            (dict(train_data_pattern=str(tmp_path / "nothing*")), "no files match"),
            (dict(top_k=-3), "--top_k must be positive")]:
        with pytest.raises(UserError, match=message):
            training.train(_video_config(synthetic_data, run, **change))
        assert _files(run) == before, change
    replaced = training.train(_video_config(synthetic_data, run, model="MoeModel", overwrite=True))
    assert replaced.steps == 3 and Config.load(str(run / "config.json")).model_.model == "MoeModel"


def test_case3_case10_a_run_failing_before_its_first_step_leaves_nothing(synthetic_data, tmp_path):
    run = tmp_path / "new"
    with pytest.raises(UserError, match="feature 'mean_rgb' has 0 values"):   # frame files read as video
        training.train(_video_config(synthetic_data, run, train_data_pattern=synthetic_data.frame_train))
    assert not run.exists()


def test_case10_stale_temporary_files_of_killed_saves_are_removed_at_start(synthetic_data, tmp_path):
    run = tmp_path / "run"
    training.train(_video_config(synthetic_data, run))
    stale = [run / "model.keras.tmp-999999999.keras", run / "config.json.tmp-999999999",
             run / "backup" / "training_metadata.json.tmp-999999999"]
    for path in stale:
        path.write_text("left by a kill -9")
    training.train(_video_config(synthetic_data, run, max_steps=6))
    assert not [p for p in stale if p.exists()]


def test_case9_bad_top_k_and_a_missing_tpu_are_one_line(synthetic_data, tmp_path):
    with pytest.raises(UserError, match="--top_k must be positive, got -3"):
        Config.from_flags(top_k=-3)
    with pytest.raises(UserError, match="--strategy=tpu found no TPU") as error:
        distribute.make_strategy("tpu")
    assert "\n" not in str(error.value)


def test_case11_config_load_goes_through_gfile():
    path = "ram://yt8m-test-run/config.json"   # not a local path: os.path/open cannot read it
    config = Config.from_flags(model="MoeModel", num_classes=7, feature_names=("rgb",), feature_sizes=(3,), top_k=5)
    config.save(path)
    assert not os.path.exists(path)
    assert Config.load(path) == config


def _final_weights(train_dir):
    return _trainable(rundir.load_trained_model(str(train_dir)))


@pytest.mark.parametrize("stream", [dict(max_steps=6, steps_per_epoch=3), dict(max_steps=None, num_epochs=2)])
def test_case7_a_resumed_run_sees_the_batches_of_an_uninterrupted_one(synthetic_data, tmp_path, capsys, stream):
    whole = training.train(_video_config(synthetic_data, tmp_path / "whole", **stream))
    # "Killed" after its first epoch's backup: the same run stopped there, then the same command again.
    first = dict(stream, max_steps=3) if stream["max_steps"] else dict(stream, num_epochs=1)
    training.train(_video_config(synthetic_data, tmp_path / "resumed", **first))
    capsys.readouterr()
    resumed = training.train(_video_config(synthetic_data, tmp_path / "resumed", **stream))
    assert f"resuming from step {whole.steps // 2} (the backup of epoch 1)" in capsys.readouterr().out
    assert resumed.steps == whole.steps and resumed.final_loss == pytest.approx(whole.final_loss, rel=1e-6)
    for got, want in zip(_final_weights(tmp_path / "resumed"), _final_weights(tmp_path / "whole")):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    # Without the skip, the resumed run would restart the stream: its last epoch's loss would differ.


def test_case8_a_loss_that_ends_far_above_its_first_step_is_warned_about(synthetic_data, tmp_path, capsys):
    # One epoch at learning rate 1e6: the epoch's mean loss explodes within it, no second epoch to compare.
    result = training.train(_video_config(synthetic_data, tmp_path / "run", base_learning_rate=1e6,
                                          clip_gradient_norm=0.0, max_steps=6, steps_per_epoch=6))
    assert np.isfinite(result.final_loss)
    assert any("its loss ended at" in symptom for symptom in result.health)
    assert "WARNING: the trained model looks dead: its loss ended at" in capsys.readouterr().out
    calm = training.train(_video_config(synthetic_data, tmp_path / "calm", max_steps=6, steps_per_epoch=6))
    assert not [symptom for symptom in calm.health if "loss ended" in symptom]


@pytest.fixture
def small_disk(tmp_path):
    """mount(size, read_only) -> a fresh tmpfs of `size` under tmp_path (root with CAP_SYS_ADMIN only)."""
    mounted = []

    def mount(size: str, read_only: bool = False) -> pathlib.Path:
        target = tmp_path / f"disk{len(mounted)}"
        target.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or 'not root'}): "
                        f"the disk-full and read-only cases need one")
        mounted.append(target)
        return target

    yield mount
    for target in mounted:
        subprocess.run(["umount", str(target)], check=False)


def test_case5_a_read_only_train_dir_or_output_file_fails_before_any_work(synthetic_data, tmp_path, small_disk):
    read_only = small_disk("1m", read_only=True)
    with pytest.raises(UserError, match=f"--train_dir={read_only}/run cannot be written .*Read-only"):
        training.train(_video_config(synthetic_data, read_only / "run"))
    run = tmp_path / "run"
    training.train(_video_config(synthetic_data, run))
    config = Config.load(str(run / "config.json")).replace(
        input_data_pattern=synthetic_data.frame_test + "-none-match", output_file=str(read_only / "s.csv"))
    # The output is checked before the inputs are even listed (no prediction is made first).
    with pytest.raises(UserError, match=f"--output_file={read_only}/s.csv cannot be written"):
        evaluation.write_submission(config, progress=False)


def test_case5_a_full_disk_keeps_the_previous_backup_and_leaves_no_partial_file(synthetic_data, small_disk):
    disk = small_disk("100m")   # a backup (53 MB) and model.keras (18 MB, no optimizer state) fit, a second backup does not
    run = disk / "run"
    with pytest.raises(OSError):
        training.train(_video_config(synthetic_data, run, max_steps=9, steps_per_epoch=3))
    assert json.loads((run / "backup" / "training_metadata.json").read_text())["epoch"] == 1
    names = sorted(p.name for p in (run / "backup").iterdir())
    assert names == ["epoch-1-batch-0.weights.h5", "training_metadata.json"], names   # no partial weights
    assert not list(run.rglob("*.tmp-*"))
    restored = rundir.load_trained_model(str(run))
    restored.load_weights(backup_weights_path(str(run / "backup")))   # the kept backup is whole


def test_case5_a_full_disk_is_one_line_from_the_command_line(synthetic_data, small_disk):
    disk = small_disk("8m")
    process = run_cli("train.py", f"--train_data_pattern={synthetic_data.video_train}",
                      f"--num_classes={synthetic_data.num_classes}", "--batch_size=16", f"--train_dir={disk}/run",
                      "--max_steps=3", "--steps_per_epoch=3")
    assert process.returncode == 1 and "Traceback" not in process.stderr, process.stderr[-2000:]
    errors = [line for line in process.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "No space left on device" in errors[0], process.stderr[-2000:]
    assert not (disk / "run").exists()   # nothing saved: the failed run removed what it wrote
