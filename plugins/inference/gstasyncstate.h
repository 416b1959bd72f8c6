#ifndef GST_IOTEDGE_ASYNC_STATE_H
#define GST_IOTEDGE_ASYNC_STATE_H

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_ASYNC_STATE (gst_async_state_get_type ())
G_DECLARE_FINAL_TYPE (GstAsyncState, gst_async_state, GST, ASYNC_STATE, GstElement)

gboolean gst_async_state_register (GstPlugin * plugin);

G_END_DECLS

#endif
