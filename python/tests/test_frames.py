"""Typed frames from Python: image and audio frames loaned or copied from numpy, read by the C++
frame API (tests/frame_peer_main.cc) and by Python, and bad input refused with clear errors."""

import gc
import pathlib
import re
import subprocess
import zlib

import numpy as np
import pyarrow as pa
import pytest

import quiver

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def frame_peer(build_dir) -> pathlib.Path:
    peer = build_dir / "frame_peer_main"
    if not peer.exists():
        pytest.fail(f"{peer} is missing: run `make build` (or set QUIVER_TEST_BUILD_DIR)")
    return peer


def pixels(shape, dtype=np.uint8, seed=0) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.random.default_rng(seed).integers(info.min, info.max, shape, dtype=dtype,
                                                endpoint=True)


def crc(array: np.ndarray) -> int:
    """CRC-32 of the array's elements in row-major order: what the C++ peer computes over an
    image's rows (padding excluded) or a frame's PCM."""
    return zlib.crc32(np.ascontiguousarray(array).tobytes())


# Each case: a function that publishes a frame and returns the array it published, and the
# line the C++ peer prints for that frame (before its crc).
RGBA = pixels((480, 640, 4), seed=1)
RGB = pixels((240, 320, 3), seed=2)
GRAY16 = pixels((120, 161), np.uint16, seed=3)
GRAY8_BIG = pixels((100, 90), seed=4)
STEREO = np.random.default_rng(5).standard_normal((480, 2)).astype(np.float32)
MONO = pixels((441,), np.int16, seed=6)
SURROUND = np.asfortranarray(np.random.default_rng(7).standard_normal((256, 6)))


def loan_rgba(pub):
    with pub.loan_image(640, 480, "RGBA8") as frame:
        assert frame.shape == (480, 640, 4) and frame.dtype == np.uint8
        frame[:] = RGBA
    assert not frame.flags.writeable, "a published loan is no longer writable"
    return RGBA


def loan_padded_rgb(pub):
    with pub.loan_image(320, 240, "rgb8", stride=1024) as frame:
        assert frame.shape == (240, 320, 3) and frame.strides == (1024, 3, 1)
        frame[:] = RGB
    return RGB


def copy_gray16_padded(pub):
    pub.publish_image(GRAY16, "GRAY16", stride=400)
    return GRAY16


def copy_gray8_strided_view(pub):
    view = GRAY8_BIG[::2, ::3]  # not contiguous: copied element by element
    pub.publish_image(view, "Gray8")
    return view


def copy_flipped_view(pub):
    flipped = RGBA[::-1, :, ::-1]  # negative strides in two dimensions: RGBA as ABGR, upside down
    pub.publish_image(flipped, "BGRA8")
    return flipped


def copy_empty_image(pub):
    empty = np.zeros((0, 5, 3), np.uint8)
    pub.publish_image(empty, "RGB8")
    return empty


def loan_stereo(pub):
    with pub.loan_audio(480, 48000, 2, "f32") as pcm:
        assert pcm.shape == (480, 2) and pcm.dtype == np.float32
        pcm[:] = STEREO
    return STEREO


def copy_mono_s16(pub):
    pub.publish_audio(MONO, 44100)  # (frames,) is mono; S16 from the dtype
    return MONO.reshape(-1, 1)


def copy_fortran_f64(pub):
    pub.publish_audio(SURROUND, 96000, "F64")
    return SURROUND


CASES = [
    (loan_rgba, "image width=640 height=480 format=RGBA8 stride=2560"),
    (loan_padded_rgb, "image width=320 height=240 format=RGB8 stride=1024"),
    (copy_gray16_padded, "image width=161 height=120 format=GRAY16 stride=400"),
    (copy_gray8_strided_view, "image width=30 height=50 format=GRAY8 stride=30"),
    (copy_flipped_view, "image width=640 height=480 format=BGRA8 stride=2560"),
    (copy_empty_image, "image width=5 height=0 format=RGB8 stride=15"),
    (loan_stereo, "audio sample_rate=48000 channels=2 format=F32 frames=480"),
    (copy_mono_s16, "audio sample_rate=44100 channels=1 format=S16 frames=441"),
    (copy_fortran_f64, "audio sample_rate=96000 channels=6 format=F64 frames=256"),
]


def in_sample(array: np.ndarray, sample) -> bool:
    """Whether every element of `array` lies in `sample`'s bytes in shared memory."""
    byte_bounds = getattr(np, "byte_bounds", None) or np.lib.array_utils.byte_bounds  # numpy 2
    lo, hi = byte_bounds(array)
    return sample.address <= lo and hi <= sample.address + sample.size


def frame_line(sample) -> str:
    """The line frame_peer_main prints for a frame, from what Python reads of it."""
    back = sample.to_numpy()
    if sample.kind == "image":
        i = sample.image_info
        return (f"image width={i.width} height={i.height} format={i.pixel_format} "
                f"stride={i.stride} crc={crc(back)}")
    i = sample.audio_info
    return (f"audio sample_rate={i.sample_rate} channels={i.channels} format={i.sample_format} "
            f"frames={i.frame_count} crc={crc(back)}")


def test_python_frames_are_read_by_the_cpp_frame_api(name, frame_peer):
    channel = quiver.Channel.create(name, "32MiB")
    peer = subprocess.Popen([str(frame_peer), "read", channel.name, str(len(CASES))],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert peer.stdout.readline().strip() == "ready"
        pub = channel.publisher()
        expected = [f"{line} crc={crc(publish(pub))}" for publish, line in CASES]
        out, _ = peer.communicate(timeout=60)
    finally:
        peer.kill()
        peer.wait()
    assert peer.returncode == 0, out
    assert out.splitlines() == expected


def test_python_frames_round_trip_with_their_headers(name):
    channel = quiver.Channel.create(name, "32MiB")
    sub, pub = channel.subscriber(), channel.publisher()
    for publish, line in CASES:
        sent = publish(pub)
        sample = sub.receive(timeout=5)
        fields = dict(f.split("=") for f in line.split()[1:])
        back = sample.to_numpy()
        assert not back.flags.writeable
        if line.startswith("image"):
            assert sample.kind == "image"
            info = sample.image_info
            assert (info.width, info.height, info.stride) == (
                int(fields["width"]), int(fields["height"]), int(fields["stride"]))
            assert info.pixel_format == fields["format"]
            assert back.shape == sent.shape and back.dtype == sent.dtype
            assert back.strides[0] == info.stride
        else:
            assert sample.kind == "audio"
            info = sample.audio_info
            assert (info.sample_rate, info.channels, info.frame_count) == (
                int(fields["sample_rate"]), int(fields["channels"]), int(fields["frames"]))
            assert info.sample_format == fields["format"]
            assert info.bytes_per_sample == back.itemsize
            assert back.shape == sent.shape and back.dtype == sent.dtype
        np.testing.assert_array_equal(back, sent)
        if back.size:
            assert in_sample(back, sample), "to_numpy() is a view of the sample, not a copy"
        del sample, back


def test_cpp_frames_are_read_by_python_with_their_headers(name, frame_peer):
    channel = quiver.Channel.create(name, "1MiB")
    sub = channel.subscriber()
    run = subprocess.run([str(frame_peer), "write", channel.name], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 7, lines
    for line in lines:
        sample = sub.receive(timeout=5)
        if "format=GRAY16 stride=7 " in line:
            # A valid frame (C++ allows any stride >= a row) that numpy cannot view as uint16
            # rows 7 bytes apart: its header still reads, its pixels are refused clearly.
            assert (sample.image_info.width, sample.image_info.stride) == (3, 7)
            with pytest.raises(quiver.InvalidArgumentError,
                               match="stride of 7 bytes, not a whole number of 2-byte elements"):
                sample.to_numpy()
            continue
        assert frame_line(sample) == line
        assert not sample.to_numpy().flags.writeable
    assert [line.split()[0] for line in lines] == ["image"] * 4 + ["audio"] * 3
    with pytest.raises(quiver.PeerGoneError):  # all read, and the peer's publisher is gone
        sub.try_receive()


def test_a_loaned_frame_is_read_where_it_was_written(name):
    channel = quiver.Channel.create(name, "1MiB")
    sub, pub = channel.subscriber(), channel.publisher()
    with pub.loan_image(6, 4, "BGR8", stride=20) as frame:
        frame[:] = pixels((4, 6, 3), seed=8)
    with pub.loan_audio(7, 22050, 3, "s32") as pcm:
        pcm[:] = pixels((7, 3), np.int32, seed=9)
    # The publisher and the subscriber map the channel at two addresses: each frame was
    # written where it is read if both lie the same distance apart, inside the sample.
    distances = set()
    for written in (frame, pcm):
        sample = sub.receive(timeout=5)
        back = sample.to_numpy()
        assert back.strides == written.strides and in_sample(back, sample)
        np.testing.assert_array_equal(back, written)
        distances.add(written.__array_interface__["data"][0] - back.__array_interface__["data"][0])
        del sample, back
    assert len(distances) == 1


def test_the_readme_frames_example_runs(name):
    """The README's frames example, run as written (on this test's channel name), and what its
    comments claim."""
    readme = (REPO / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "loan_image(" in b]
    assert len(blocks) == 1, "the README has one frames example"
    code = blocks[0]
    assert '"camera"' in code
    namespace: dict = {}
    exec(compile(code.replace('"camera"', repr(name)), "README.md", "exec"), namespace)
    claims = re.findall(r"^(\S.*?)\s+# ((?:Image|Audio)FrameInfo\(.*\))$", code, re.M)
    assert len(claims) == 2
    for expression, claimed in claims:
        assert repr(eval(expression, namespace)) == claimed
    image = namespace["image"].to_numpy()
    assert image.shape == (480, 640, 4) and not image.flags.writeable
    assert in_sample(image, namespace["image"])
    assert (image == (255, 0, 0, 255)).all()
    del image, namespace
    gc.collect()


def test_gray_images_are_two_dimensional_both_ways(name):
    channel = quiver.Channel.create(name, "32MiB")
    sub, pub = channel.subscriber(), channel.publisher()
    with pub.loan_image(7, 3, "GRAY8") as gray:
        assert gray.shape == (3, 7)
        gray[:] = 9
    assert sub.receive(timeout=5).to_numpy().shape == (3, 7)
    pub.publish_image(np.full((3, 7, 1), 5, np.uint8), "GRAY8")  # (h, w, 1) is one channel too
    sample = sub.receive(timeout=5)
    assert sample.to_numpy().shape == (3, 7) and (sample.to_numpy() == 5).all()
    assert sample.image_info.bytes_per_pixel == 1
    assert repr(sample.image_info) == \
        "ImageFrameInfo(width=7, height=3, pixel_format='GRAY8', stride=7)"
    del sample


def test_a_loan_is_discarded_on_an_exception(name):
    channel = quiver.Channel.create(name, "32MiB")
    sub, pub = channel.subscriber(), channel.publisher()
    with pytest.raises(RuntimeError):
        with pub.loan_image(16, 16, "RGBA8") as frame:
            frame[:] = 1
            raise RuntimeError("render failed")
    with pytest.raises(KeyError):
        with pub.loan_audio(10, 8000, 1, "U8"):
            raise KeyError("capture failed")
    assert sub.try_receive() is None, "nothing is published from a failed block"
    with pub.loan_audio(2, 8000, 1, "U8") as pcm:
        pcm[:] = 3
    assert sub.receive(timeout=5).to_numpy().tolist() == [[3], [3]], "the space came back"


def test_a_loaned_array_keeps_its_channel_mapped(name):
    channel = quiver.Channel.create(name, "1MiB")
    with channel.publisher().loan_audio(4, 8000, 1, "S32") as pcm:
        pcm[:, 0] = [1, 2, 3, 4]
    del channel
    gc.collect()
    # The array holds its loan, the loan its publisher, the publisher the channel.
    assert pcm[:, 0].tolist() == [1, 2, 3, 4]


def publish_image(array, fmt, **kw):
    return lambda pub: pub.publish_image(array, fmt, **kw)


def loan_image(*args, **kw):
    return lambda pub: pub.loan_image(*args, **kw).__enter__()


def publish_audio(array, rate, fmt=None):
    return lambda pub: pub.publish_audio(array, rate, fmt)


def loan_audio(*args):
    return lambda pub: pub.loan_audio(*args).__enter__()


BAD = [
    ("unknown pixel format", loan_image(4, 4, "RGBA9"), "unknown pixel format 'RGBA9'"),
    ("unknown pixel format, copy", publish_image(np.zeros((4, 4, 4), np.uint8), "YUV420"),
     "unknown pixel format 'YUV420'"),
    ("unknown sample format", loan_audio(10, 48000, 2, "F16"), "unknown sample format 'F16'"),
    ("unknown sample format, copy", publish_audio(np.zeros(4, np.float32), 48000, "float"),
     "unknown sample format 'float'"),
    ("float pixels", publish_image(np.zeros((4, 4, 4), np.float32), "RGBA8"),
     "RGBA8 pixels are uint8 of shape (4, 4, 4); got float32 of shape (4, 4, 4)"),
    ("three channels for RGBA", publish_image(np.zeros((4, 5, 3), np.uint8), "RGBA8"),
     "RGBA8 pixels are uint8 of shape (4, 5, 4); got uint8 of shape (4, 5, 3)"),
    ("bytes for GRAY16", publish_image(np.zeros((4, 5), np.uint8), "GRAY16"),
     "GRAY16 pixels are uint16 of shape (4, 5); got uint8 of shape (4, 5)"),
    ("colour for GRAY8", publish_image(np.zeros((4, 5, 3), np.uint8), "GRAY8"),
     "GRAY8 pixels are uint8 of shape (4, 5); got uint8 of shape (4, 5, 3)"),
    ("a row is no image", publish_image(np.zeros(16, np.uint8), "GRAY8"),
     "an image is an array of shape (height, width[, channels]); got one of shape (16,)"),
    ("stride below a row", loan_image(4, 4, "RGB8", stride=11), "stride 11 < a row of 12 bytes"),
    ("odd GRAY16 stride", publish_image(np.zeros((2, 3), np.uint16), "GRAY16", stride=7),
     "GRAY16 frame with a stride of 7 bytes, not a whole number of 2-byte elements"),
    ("negative width", loan_image(-1, 4, "RGB8"), "width must be in [0, 4294967295], got -1"),
    ("int16 as F32", publish_audio(np.zeros(8, np.int16), 48000, "F32"),
     "F32 samples are float32 of shape (8, 1); got int16 of shape (8,)"),
    ("int8 audio", publish_audio(np.zeros(8, np.int8), 48000),
     "no sample format has numpy dtype int8 (U8 uint8, S16 int16, S32 int32, F32 float32, "
     "F64 float64)"),
    ("zero sample rate", loan_audio(10, 0, 2, "S16"),
     "audio frame needs a sample rate and at least one channel"),
    ("zero sample rate, copy", publish_audio(np.zeros((8, 2), np.int16), 0),
     "audio frame needs a sample rate and at least one channel"),
    ("zero channels", loan_audio(10, 48000, 0, "S16"),
     "audio frame needs a sample rate and at least one channel"),
    ("zero channels, copy", publish_audio(np.zeros((8, 0), np.int16), 48000),
     "audio frame needs a sample rate and at least one channel"),
    ("too many channels", loan_audio(10, 48000, 70000, "S16"),
     "channels must be in [0, 65535], got 70000"),
    ("cube of PCM", publish_audio(np.zeros((2, 2, 2), np.float32), 48000),
     "PCM is an array of shape (frames, channels), or (frames,) for mono; got one of shape "
     "(2, 2, 2)"),
    ("stride below a row, copy", publish_image(np.zeros((2, 4, 3), np.uint8), "RGB8", stride=11),
     "stride 11 < a row of 12 bytes"),
    ("odd GRAY16 stride, loan", loan_image(3, 2, "GRAY16", stride=7),
     "GRAY16 frame with a stride of 7 bytes, not a whole number of 2-byte elements"),
    ("negative stride", loan_image(4, 4, "RGB8", stride=-12),
     "stride must be in [0, 4294967295], got -12"),
    ("height too large", loan_image(4, 2**32, "GRAY8"),
     "height must be in [0, 4294967295], got 4294967296"),
    # 2^32 columns of one byte, all of them the same byte: no memory behind the shape.
    ("width too large, copy",
     publish_image(np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), (1, 2**32), (0, 0)),
                   "GRAY8"),
     "width must be in [0, 4294967295], got 4294967296"),
    ("row wider than a stride can say", loan_image(2**31, 1, "RGBA8"), "image row too wide"),
    ("negative frame count", loan_audio(-1, 48000, 2, "S16"),
     "frame_count must be in [0, 9223372036854775807], got -1"),
    ("sample rate too large", loan_audio(10, 2**32, 2, "S16"),
     "sample_rate must be in [0, 4294967295], got 4294967296"),
    ("PCM size overflows", loan_audio(2**62, 48000, 8, "F64"), "audio frame too large"),
    ("bool pixels", publish_image(np.zeros((2, 2), bool), "GRAY8"),
     "GRAY8 pixels are uint8 of shape (2, 2); got bool of shape (2, 2)"),
]


@pytest.mark.parametrize("call,message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_frames_are_invalid_argument_and_publish_nothing(name, call, message):
    channel = quiver.Channel.create(name, "32MiB")
    sub, pub = channel.subscriber(), channel.publisher()
    with pytest.raises(quiver.InvalidArgumentError) as error:
        call(pub)
    assert message in str(error.value)
    assert sub.try_receive() is None


def test_a_frame_larger_than_the_channel_is_capacity_exceeded(name):
    channel = quiver.Channel.create(name, "1MiB")
    sub, pub = channel.subscriber(), channel.publisher()
    with pytest.raises(quiver.CapacityExceededError):
        pub.loan_image(1024, 1024, "RGBA8").__enter__()
    with pytest.raises(quiver.CapacityExceededError):
        pub.publish_audio(np.zeros((300_000, 1), np.float32), 48000)
    assert sub.try_receive() is None


def test_frames_on_an_arrow_channel_are_invalid_argument(name):
    channel = quiver.Channel.create(name, "1MiB", schema=pa.schema([("x", pa.int64())]))
    sub, pub = channel.subscriber(), channel.publisher()
    for call in (loan_image(2, 2, "GRAY8"), publish_image(np.zeros((2, 2), np.uint8), "GRAY8"),
                 loan_audio(2, 8000, 1, "U8"), publish_audio(np.zeros(2, np.uint8), 8000)):
        with pytest.raises(quiver.InvalidArgumentError, match="has an Arrow schema"):
            call(pub)
    assert sub.try_receive() is None


def test_a_frame_loan_is_published_or_discarded_once(name):
    channel = quiver.Channel.create(name, "1MiB")
    sub, pub = channel.subscriber(), channel.publisher()
    loan = pub._p.loan_audio(2, 8000, 1, "U8")  # the native loan under the context manager
    assert loan.active and loan.info.frame_count == 2
    loan.publish()
    assert not loan.active
    for use in (loan.publish, lambda: loan.array, lambda: loan.info):
        with pytest.raises(quiver.InvalidArgumentError, match="already published"):
            use()
    assert sub.receive(timeout=5).audio_info.frame_count == 2
    assert sub.try_receive() is None


def test_a_discarded_loan_leaves_its_array_read_only(name):
    channel = quiver.Channel.create(name, "1MiB")
    pub = channel.publisher()
    with pytest.raises(RuntimeError):
        with pub.loan_image(4, 4, "GRAY8") as frame:
            raise RuntimeError("render failed")
    with pytest.raises(ValueError, match="read-only"):
        frame[:] = 1  # the space went back: a write here would land in the next loan


def test_frame_headers_of_other_kinds_are_invalid_argument(name):
    channel = quiver.Channel.create(name, "32MiB")
    sub, pub = channel.subscriber(), channel.publisher()
    pub.publish_bytes(b"not a frame")
    pub.publish_audio(np.zeros(4, np.float32), 8000)
    pub.publish_image(np.zeros((2, 2, 3), np.uint8), "RGB8")
    raw, audio, image = (sub.receive(timeout=5) for _ in range(3))
    with pytest.raises(quiver.InvalidArgumentError, match="kind is 'raw', not an image frame"):
        raw.image_info
    with pytest.raises(quiver.InvalidArgumentError, match="kind is 'image', not an audio frame"):
        image.audio_info
    with pytest.raises(quiver.InvalidArgumentError, match="kind is 'audio', not an image frame"):
        audio.image_info
    assert audio.audio_info.frame_count == 4 and image.image_info.width == 2
    del raw, audio, image


def test_a_frame_loan_is_entered_once(name):
    channel = quiver.Channel.create(name, "32MiB")
    pub = channel.publisher()
    loan = pub.loan_image(2, 2, "GRAY8")
    with loan:
        with pytest.raises(quiver.InvalidArgumentError, match="entered already"):
            loan.__enter__()
