/*
 * gst-iotedge's `iotedgehub` element: the sample hub's per-buffer work in C, so that no buffer of a shared stream
 * costs the JS thread anything unless a JS consumer wants it.
 *
 * Why: with the hub in JS, each producer sample was a signal marshalled to the JS thread (the streaming thread
 * waiting for it) and about fifteen node-gtk calls, then per consumer a copy and a push. Relaying 16 cameras, the
 * engine's JS thread spent 0.19 of a core on it and the module used 1.63 times the CPU of one gst-rtsp-server doing
 * the same relays. Here the appsink's `new-sample` runs a C handler on the streaming thread, which hands a shallow
 * copy of the buffer to every attached appsrc with the same timestamps the JS hub gave (see media/SampleHub.ts).
 *
 * It is never put in a pipeline: the engine makes one and uses its action signals.
 *   attach-producer (GstElement *appsink, gchararray stream, guint producer)  producer: one id per producer run,
 *                                                   shared by its video and audio (they share one offset)
 *   detach-producer (GstElement *appsink)
 *   attach-consumer (GstElement *appsrc, gchararray stream)
 *   detach-consumer (GstElement *appsrc)         once it returns, nothing more is pushed into that appsrc
 *   request-key-frame (gchararray stream)         asks the stream's producer (its encoder) for a key frame
 *   set-forward (gchararray stream, gboolean)     whether the stream's samples are also emitted to JS:
 *   sample (gchararray stream, GstSample *, guint producer, guint64 capture, guint64 capture_dts,
 *           guint caps_version, gboolean delta, guint size)       emitted on the streaming thread, no lock held
 *   property `stats` (string): one line per stream, "name\tbuffers\tbytes\tcaps".
 */
#include <gst/gst.h>

#include "gsthub.h"

/*
 * Two calls of libgstapp (the library appsink and appsrc live in, in gstreamer1.0-plugins-base; linked as
 * libgstapp-1.0.so.0 by scripts/build-analysis.sh). Declared here because their header comes with
 * libgstreamer-plugins-base1.0-dev, whose dependencies (mesa, X and Wayland headers) the build stage would otherwise
 * not need; both have had this signature since GStreamer 1.0. Called directly, not as the elements' action signals:
 * an emission by name looks the signal up and marshals through libffi, about 1.5% of the engine's CPU relaying 16
 * cameras (bench/cameras.ts, side by side).
 */
GstSample *gst_app_sink_pull_sample (GstElement * appsink);
GstFlowReturn gst_app_src_push_buffer (GstElement * appsrc, GstBuffer * buffer);

GST_DEBUG_CATEGORY_STATIC (gst_iotedge_hub_debug);
#define GST_CAT_DEFAULT gst_iotedge_hub_debug

typedef struct
{
  gchar *name;
  /* Consumer *, under the hub's lock. */
  GPtrArray *consumers;
  GstCaps *caps;
  guint caps_version;
  gchar *caps_string;
  guint64 buffers;
  guint64 bytes;
  gboolean forward;
  /* The appsink publishing it now (not a reference: cleared when that producer goes), to ask for key frames. */
  GstElement *sink;
  /* When a key frame was last asked for (monotonic µs). */
  gint64 asked_at;
} Stream;

/* A producer run: its streams share the delay from capture to the hub, fixed at its first sample. */
typedef struct
{
  guint id;
  gint refs;
  gboolean has_delay;
  gint64 delay;
} Group;

typedef struct
{
  GstIotedgeHub *hub;
  Stream *stream;
  Group *group;
  /* Not a reference: the record lives as long as the signal handler, which the appsink owns. */
  GstElement *sink;
  gulong handler;
} Producer;

typedef struct
{
  GstElement *appsrc;
  Stream *stream;
  guint caps_version;
  gboolean waiting;
  /* Asked the producer for a key frame since it started playing. */
  gboolean asked;
  guint producer;
  gint64 shift;
  gint64 last_dts;
} Consumer;

struct _GstIotedgeHub
{
  GstElement parent;
  GMutex lock;
  /* name -> Stream *: streams outlive their producers (a swap keeps the consumers), and are never freed. */
  GHashTable *streams;
  /* id -> Group * */
  GHashTable *groups;
  GPtrArray *producers;
  GstClock *clock;
};

G_DEFINE_TYPE (GstIotedgeHub, gst_iotedge_hub, GST_TYPE_ELEMENT);

enum
{
  SIGNAL_ATTACH_PRODUCER,
  SIGNAL_DETACH_PRODUCER,
  SIGNAL_ATTACH_CONSUMER,
  SIGNAL_DETACH_CONSUMER,
  SIGNAL_SET_FORWARD,
  SIGNAL_REQUEST_KEY_FRAME,
  SIGNAL_SAMPLE,
  LAST_SIGNAL
};

enum
{
  PROP_0,
  PROP_STATS
};

static guint signals[LAST_SIGNAL];

/* Under the lock. */
static Stream *
stream_get (GstIotedgeHub * hub, const gchar * name)
{
  Stream *stream = g_hash_table_lookup (hub->streams, name);
  if (!stream) {
    stream = g_new0 (Stream, 1);
    stream->name = g_strdup (name);
    stream->consumers = g_ptr_array_new ();
    g_hash_table_insert (hub->streams, stream->name, stream);
  }
  return stream;
}

/* Under the lock. */
static Group *
group_ref (GstIotedgeHub * hub, guint id)
{
  Group *group = g_hash_table_lookup (hub->groups, GUINT_TO_POINTER (id));
  if (!group) {
    group = g_new0 (Group, 1);
    group->id = id;
    g_hash_table_insert (hub->groups, GUINT_TO_POINTER (id), group);
  }
  group->refs++;
  return group;
}

/* Under the lock. */
static void
group_unref (GstIotedgeHub * hub, Group * group)
{
  if (--group->refs > 0)
    return;
  g_hash_table_remove (hub->groups, GUINT_TO_POINTER (group->id));
  g_free (group);
}

/* A PTS or DTS as clock time: its running time plus the producer's base time; NONE where it has none. */
static GstClockTime
to_clock (const GstSegment * segment, GstClockTime time, GstClockTime base)
{
  GstClockTime running;
  if (!GST_CLOCK_TIME_IS_VALID (time))
    return GST_CLOCK_TIME_NONE;
  running = segment && segment->format == GST_FORMAT_TIME ?
      gst_segment_to_running_time (segment, GST_FORMAT_TIME, time) : time;
  return GST_CLOCK_TIME_IS_VALID (running) ? running + base : GST_CLOCK_TIME_NONE;
}

/* As media/SampleHub.ts KEY_FRAME_WAIT_MS: requests closer together add nothing. */
#define KEY_FRAME_WAIT_US (300 * G_TIME_SPAN_MILLISECOND)

/*
 * Under the lock: whether to ask the stream's producer for a key frame now; if so, its appsink's sink pad (a
 * reference) to send the request from once the lock is released (ask_key_frame). One unanswered request within
 * KEY_FRAME_WAIT_US stands for all: the key frame that answers it clears asked_at.
 */
static GstPad *
stream_key_frame_pad (Stream * stream)
{
  gint64 now = g_get_monotonic_time ();
  if (!stream->sink || (stream->asked_at != 0 && now - stream->asked_at < KEY_FRAME_WAIT_US))
    return NULL;
  stream->asked_at = now;
  return gst_element_get_static_pad (stream->sink, "sink");
}

/*
 * Outside the lock: a force-key-unit event upstream from an appsink's sink pad (what gst_video_event_new_upstream_
 * force_key_unit makes, spelled out to need only GStreamer's core); an encoder in the producer answers it. Pushed
 * on the pad, not sent to the element: gst_element_send_event takes the element's state lock, which a state change
 * holds while it waits for this very streaming thread.
 */
static void
ask_key_frame (GstPad * pad)
{
  if (!pad)
    return;
  gst_pad_push_event (pad, gst_event_new_custom (GST_EVENT_CUSTOM_UPSTREAM,
          gst_structure_new ("GstForceKeyUnit", "running-time", GST_TYPE_CLOCK_TIME, GST_CLOCK_TIME_NONE,
              "all-headers", G_TYPE_BOOLEAN, TRUE, "count", G_TYPE_UINT, 0, NULL)));
  gst_object_unref (pad);
}

#define COPY_SHALLOW (GST_BUFFER_COPY_FLAGS | GST_BUFFER_COPY_META | GST_BUFFER_COPY_MEMORY | GST_BUFFER_COPY_TIMESTAMPS)

/*
 * Under the lock: one buffer into one consumer, as attachConsumer in media/SampleHub.ts does it: caps follow the
 * producer, video waits for a key frame after a caps change, PTS/DTS are capture times moved onto the consumer's
 * running time by the producer's delay, and a new producer continues after what the consumer already sent.
 */
static void
consumer_feed (GstIotedgeHub * hub, Consumer * consumer, Stream * stream, Group * group, GstBuffer * buffer,
    GstClockTime capture, GstClockTime capture_dts, gboolean delta, gsize size, GstPad ** ask)
{
  gint64 base, pts, dts;
  GstBuffer *own;

  if (consumer->caps_version != stream->caps_version) {
    consumer->caps_version = stream->caps_version;
    if (stream->caps)
      g_object_set (consumer->appsrc, "caps", stream->caps, NULL);
    consumer->waiting = TRUE;
  }
  /* Before PLAYING the consumer has no base time yet: a buffer stamped now would carry the clock's absolute time
   * and stall its sinks. It starts at the first key frame once it plays, and asks for one if it is waiting. */
  if (GST_STATE (consumer->appsrc) != GST_STATE_PLAYING) {
    consumer->waiting = TRUE;
    consumer->asked = FALSE;
    return;
  }
  if (consumer->waiting) {
    if (delta) {
      if (!consumer->asked) {
        consumer->asked = TRUE;
        if (!*ask)
          *ask = stream_key_frame_pad (stream);
      }
      return;
    }
    consumer->waiting = FALSE;
    GST_DEBUG_OBJECT (hub, "%s: %s starts with a key frame", stream->name, GST_OBJECT_NAME (consumer->appsrc));
  }
  base = (gint64) gst_element_get_base_time (consumer->appsrc);
  pts = (capture == GST_CLOCK_TIME_NONE ? (gint64) gst_clock_get_time (hub->clock) - group->delay : (gint64) capture)
      + group->delay - base;
  dts = capture_dts == GST_CLOCK_TIME_NONE ? pts : (gint64) capture_dts + group->delay - base;
  if (group->id != consumer->producer) {
    consumer->producer = group->id;
    consumer->shift = consumer->last_dts >= 0 && dts <= consumer->last_dts ? consumer->last_dts + 1 - dts : 0;
  }
  pts += consumer->shift;
  dts += consumer->shift;
  GST_LOG_OBJECT (hub, "%s: %s pts %" G_GINT64_FORMAT " dts %" G_GINT64_FORMAT " base %" G_GINT64_FORMAT " shift %"
      G_GINT64_FORMAT " producer %u", stream->name, GST_OBJECT_NAME (consumer->appsrc), pts, dts, base, consumer->shift,
      group->id);
  /* Captured before this consumer started: too late to show. */
  if (pts < 0 || dts < 0)
    return;
  consumer->last_dts = dts;
  own = gst_buffer_copy_region (buffer, COPY_SHALLOW, 0, size);
  if (!own)
    return;
  GST_BUFFER_PTS (own) = (GstClockTime) pts;
  GST_BUFFER_DTS (own) = capture_dts == GST_CLOCK_TIME_NONE ? GST_CLOCK_TIME_NONE : (GstClockTime) dts;
  /* Takes the buffer (the action signal took a reference of its own). Refused while flushing or after EOS. */
  if (gst_app_src_push_buffer (consumer->appsrc, own) != GST_FLOW_OK)
    GST_LOG_OBJECT (hub, "%s: %s refused a buffer", stream->name, GST_OBJECT_NAME (consumer->appsrc));
}

/* On the producer's streaming thread. */
static GstFlowReturn
on_new_sample (GstElement * sink, gpointer data)
{
  Producer *producer = data;
  GstIotedgeHub *hub = producer->hub;
  Stream *stream = producer->stream;
  Group *group = producer->group;
  GstSample *sample = NULL;
  GstBuffer *buffer;
  GstCaps *caps;
  GstClockTime base, capture, capture_dts, dts;
  gsize size;
  gboolean delta, forward;
  guint caps_version, i;
  GstPad *ask = NULL;

  sample = gst_app_sink_pull_sample (sink);
  if (!sample)
    return GST_FLOW_OK;
  buffer = gst_sample_get_buffer (sample);
  if (!buffer) {
    gst_sample_unref (sample);
    return GST_FLOW_OK;
  }
  caps = gst_sample_get_caps (sample);
  base = gst_element_get_base_time (sink);
  capture = to_clock (gst_sample_get_segment (sample), GST_BUFFER_PTS (buffer), base);
  dts = GST_BUFFER_DTS (buffer);
  capture_dts = !GST_CLOCK_TIME_IS_VALID (dts) || dts == GST_BUFFER_PTS (buffer) ?
      GST_CLOCK_TIME_NONE : to_clock (gst_sample_get_segment (sample), dts, base);
  size = gst_buffer_get_size (buffer);
  delta = GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT);

  g_mutex_lock (&hub->lock);
  stream->buffers++;
  stream->bytes += size;
  if (caps && !(stream->caps && gst_caps_is_equal (caps, stream->caps))) {
    gst_caps_replace (&stream->caps, caps);
    stream->caps_version++;
    g_free (stream->caps_string);
    stream->caps_string = gst_caps_to_string (caps);
  }
  if (!delta)
    stream->asked_at = 0;
  forward = stream->forward;
  caps_version = stream->caps_version;
  if (stream->consumers->len > 0) {
    if (!group->has_delay) {
      group->has_delay = TRUE;
      group->delay = capture == GST_CLOCK_TIME_NONE ? 0 :
          MAX (0, (gint64) gst_clock_get_time (hub->clock) - (gint64) capture);
    }
    for (i = 0; i < stream->consumers->len; i++)
      consumer_feed (hub, g_ptr_array_index (stream->consumers, i), stream, group, buffer, capture, capture_dts,
          delta, size, &ask);
  }
  g_mutex_unlock (&hub->lock);
  ask_key_frame (ask);

  /* JS consumers (analysis, the recorder's watch): outside the lock, since the JS thread may be waiting for it. */
  if (forward)
    g_signal_emit (hub, signals[SIGNAL_SAMPLE], 0, stream->name, sample, group->id, (guint64) capture,
        (guint64) capture_dts, caps_version, delta, (guint) size);
  gst_sample_unref (sample);
  return GST_FLOW_OK;
}

/* The handler's destroy notify: when it is disconnected or the appsink is finalized, after any emission. */
static void
producer_free (gpointer data, GClosure * closure)
{
  Producer *producer = data;
  GstIotedgeHub *hub = producer->hub;
  g_mutex_lock (&hub->lock);
  g_ptr_array_remove (hub->producers, producer);
  if (producer->stream->sink == producer->sink)
    producer->stream->sink = NULL;
  group_unref (hub, producer->group);
  g_mutex_unlock (&hub->lock);
  gst_object_unref (hub);
  g_free (producer);
}

static void
gst_iotedge_hub_attach_producer (GstIotedgeHub * hub, GstElement * sink, const gchar * name, guint group_id)
{
  Producer *producer;
  /* An appsink: its samples are pulled with gst_app_sink_pull_sample. */
  g_return_if_fail (G_TYPE_CHECK_INSTANCE_TYPE (sink, g_type_from_name ("GstAppSink")) && name != NULL);
  producer = g_new0 (Producer, 1);
  producer->hub = gst_object_ref (hub);
  producer->sink = sink;
  g_mutex_lock (&hub->lock);
  producer->stream = stream_get (hub, name);
  producer->group = group_ref (hub, group_id);
  producer->stream->sink = sink;
  g_ptr_array_add (hub->producers, producer);
  g_mutex_unlock (&hub->lock);
  GST_DEBUG_OBJECT (hub, "%s: producer %s (run %u) attached", name, GST_OBJECT_NAME (sink), group_id);
  g_object_set (sink, "emit-signals", TRUE, NULL);
  producer->handler = g_signal_connect_data (sink, "new-sample", G_CALLBACK (on_new_sample), producer,
      producer_free, 0);
}

static void
gst_iotedge_hub_detach_producer (GstIotedgeHub * hub, GstElement * sink)
{
  gulong handler = 0;
  guint i;
  g_return_if_fail (GST_IS_ELEMENT (sink));
  g_mutex_lock (&hub->lock);
  for (i = 0; i < hub->producers->len; i++) {
    Producer *producer = g_ptr_array_index (hub->producers, i);
    if (producer->sink == sink && producer->handler != 0) {
      handler = producer->handler;
      producer->handler = 0;
      break;
    }
  }
  g_mutex_unlock (&hub->lock);
  GST_DEBUG_OBJECT (hub, "producer %s detached (handler %lu)", GST_OBJECT_NAME (sink), handler);
  /* Outside the lock: the notify (producer_free) may run at once and takes it. */
  if (handler != 0)
    g_signal_handler_disconnect (sink, handler);
}

static void
gst_iotedge_hub_attach_consumer (GstIotedgeHub * hub, GstElement * appsrc, const gchar * name)
{
  Consumer *consumer;
  /* An appsrc: buffers go in with gst_app_src_push_buffer. */
  g_return_if_fail (G_TYPE_CHECK_INSTANCE_TYPE (appsrc, g_type_from_name ("GstAppSrc")) && name != NULL);
  consumer = g_new0 (Consumer, 1);
  consumer->appsrc = gst_object_ref (appsrc);
  consumer->caps_version = G_MAXUINT;
  consumer->waiting = TRUE;
  consumer->last_dts = -1;
  GST_DEBUG_OBJECT (hub, "%s: consumer %s attached", name, GST_OBJECT_NAME (appsrc));
  g_mutex_lock (&hub->lock);
  consumer->stream = stream_get (hub, name);
  g_ptr_array_add (consumer->stream->consumers, consumer);
  g_mutex_unlock (&hub->lock);
}

static void
gst_iotedge_hub_detach_consumer (GstIotedgeHub * hub, GstElement * appsrc)
{
  GHashTableIter iter;
  gpointer value;
  GPtrArray *gone = g_ptr_array_new ();
  guint i;
  g_mutex_lock (&hub->lock);
  g_hash_table_iter_init (&iter, hub->streams);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    Stream *stream = value;
    for (i = stream->consumers->len; i > 0; i--) {
      Consumer *consumer = g_ptr_array_index (stream->consumers, i - 1);
      if (consumer->appsrc == appsrc) {
        g_ptr_array_remove_index (stream->consumers, i - 1);
        g_ptr_array_add (gone, consumer);
      }
    }
  }
  g_mutex_unlock (&hub->lock);
  for (i = 0; i < gone->len; i++) {
    Consumer *consumer = g_ptr_array_index (gone, i);
    gst_object_unref (consumer->appsrc);
    g_free (consumer);
  }
  g_ptr_array_free (gone, TRUE);
}

static void
gst_iotedge_hub_set_forward (GstIotedgeHub * hub, const gchar * name, gboolean forward)
{
  g_return_if_fail (name != NULL);
  g_mutex_lock (&hub->lock);
  stream_get (hub, name)->forward = forward;
  g_mutex_unlock (&hub->lock);
}

static void
gst_iotedge_hub_request_key_frame (GstIotedgeHub * hub, const gchar * name)
{
  GstPad *pad;
  g_return_if_fail (name != NULL);
  g_mutex_lock (&hub->lock);
  pad = stream_key_frame_pad (stream_get (hub, name));
  g_mutex_unlock (&hub->lock);
  ask_key_frame (pad);
}

static void
gst_iotedge_hub_get_property (GObject * object, guint prop_id, GValue * value, GParamSpec * pspec)
{
  GstIotedgeHub *hub = GST_IOTEDGE_HUB (object);
  switch (prop_id) {
    case PROP_STATS:{
      GString *text = g_string_new (NULL);
      GHashTableIter iter;
      gpointer item;
      g_mutex_lock (&hub->lock);
      g_hash_table_iter_init (&iter, hub->streams);
      while (g_hash_table_iter_next (&iter, NULL, &item)) {
        Stream *stream = item;
        g_string_append_printf (text, "%s\t%" G_GUINT64_FORMAT "\t%" G_GUINT64_FORMAT "\t%s\n", stream->name,
            stream->buffers, stream->bytes, stream->caps_string ? stream->caps_string : "");
      }
      g_mutex_unlock (&hub->lock);
      g_value_take_string (value, g_string_free (text, FALSE));
      break;
    }
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
gst_iotedge_hub_class_init (GstIotedgeHubClass * klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GType type = G_TYPE_FROM_CLASS (klass);

  object_class->get_property = gst_iotedge_hub_get_property;
  g_object_class_install_property (object_class, PROP_STATS, g_param_spec_string ("stats", "Stats",
          "One line per stream: name, buffers, bytes, caps (tab-separated)", NULL,
          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  gst_element_class_set_static_metadata (element_class, "gst-iotedge sample hub", "Generic",
      "Hands the samples of named appsinks to any number of appsrcs, in C", "gst-iotedge");

  signals[SIGNAL_ATTACH_PRODUCER] = g_signal_new_class_handler ("attach-producer", type,
      G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION, G_CALLBACK (gst_iotedge_hub_attach_producer), NULL, NULL, NULL,
      G_TYPE_NONE, 3, GST_TYPE_ELEMENT, G_TYPE_STRING, G_TYPE_UINT);
  signals[SIGNAL_DETACH_PRODUCER] = g_signal_new_class_handler ("detach-producer", type,
      G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION, G_CALLBACK (gst_iotedge_hub_detach_producer), NULL, NULL, NULL,
      G_TYPE_NONE, 1, GST_TYPE_ELEMENT);
  signals[SIGNAL_ATTACH_CONSUMER] = g_signal_new_class_handler ("attach-consumer", type,
      G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION, G_CALLBACK (gst_iotedge_hub_attach_consumer), NULL, NULL, NULL,
      G_TYPE_NONE, 2, GST_TYPE_ELEMENT, G_TYPE_STRING);
  signals[SIGNAL_DETACH_CONSUMER] = g_signal_new_class_handler ("detach-consumer", type,
      G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION, G_CALLBACK (gst_iotedge_hub_detach_consumer), NULL, NULL, NULL,
      G_TYPE_NONE, 1, GST_TYPE_ELEMENT);
  signals[SIGNAL_SET_FORWARD] = g_signal_new_class_handler ("set-forward", type,
      G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION, G_CALLBACK (gst_iotedge_hub_set_forward), NULL, NULL, NULL,
      G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_BOOLEAN);
  signals[SIGNAL_REQUEST_KEY_FRAME] = g_signal_new_class_handler ("request-key-frame", type,
      G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION, G_CALLBACK (gst_iotedge_hub_request_key_frame), NULL, NULL, NULL,
      G_TYPE_NONE, 1, G_TYPE_STRING);
  signals[SIGNAL_SAMPLE] = g_signal_new ("sample", type, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 8,
      G_TYPE_STRING, GST_TYPE_SAMPLE, G_TYPE_UINT, G_TYPE_UINT64, G_TYPE_UINT64, G_TYPE_UINT, G_TYPE_BOOLEAN,
      G_TYPE_UINT);
}

static void
gst_iotedge_hub_init (GstIotedgeHub * hub)
{
  g_mutex_init (&hub->lock);
  hub->streams = g_hash_table_new (g_str_hash, g_str_equal);
  hub->groups = g_hash_table_new (g_direct_hash, g_direct_equal);
  hub->producers = g_ptr_array_new ();
  hub->clock = gst_system_clock_obtain ();
}

gboolean
gst_iotedge_hub_register (GstPlugin * plugin)
{
  GST_DEBUG_CATEGORY_INIT (gst_iotedge_hub_debug, "iotedgehub", 0, "gst-iotedge sample hub");
  return gst_element_register (plugin, "iotedgehub", GST_RANK_NONE, GST_TYPE_IOTEDGE_HUB);
}
