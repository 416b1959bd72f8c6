#ifndef GST_IOTEDGE_HUB_H
#define GST_IOTEDGE_HUB_H

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_IOTEDGE_HUB (gst_iotedge_hub_get_type ())
G_DECLARE_FINAL_TYPE (GstIotedgeHub, gst_iotedge_hub, GST, IOTEDGE_HUB, GstElement)

gboolean gst_iotedge_hub_register (GstPlugin * plugin);

G_END_DECLS

#endif
