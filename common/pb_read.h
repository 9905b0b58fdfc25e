/*
 * pb_read.h — protobuf messages into protobuf-c's generated structs, without protobuf-c's
 * generic unpacker.
 *
 * protobuf_c_message_unpack scans every message twice, keeps a slab of scanned members, looks
 * each field up through its range table and allocates through the allocator for each scan
 * slab: for the aggregator's Kafka batches (a thousand records of a dozen features each) that
 * was a third of the aggregator's instructions. mw_pb_read fills the same structs in one pass
 * from the same descriptors (so a field added to telemetry.proto needs nothing here), and
 * follows protobuf-c 1.4's rules of reading exactly, so that no reader of a struct can tell
 * which one filled it:
 *   - wire syntax, varints, bools and enums as common/wire.h reads them;
 *   - a known field of another wire type refuses the message (a bool takes any wire type);
 *   - optional scalars and strings: the last occurrence wins; strings are copied whole and
 *     NUL-terminated (a NUL inside ends the C string, as with protobuf-c);
 *   - a oneof: the last member given wins and replaces the earlier one, a message member too;
 *   - an optional message given twice: the second is merged into the first (scalars and
 *     strings given replace, repeated fields append, messages merge);
 *   - repeated fields: occurrences append in order; a packable scalar field (not string,
 *     bytes or message) takes packed and unpacked occurrences alike;
 *   - unknown fields are kept in unknown_fields (tag, wire type, and the bytes after the tag),
 *     and only those of a merged message's last occurrence stay.
 * Memory comes from `allocator` (NULL: protobuf-c's default, malloc) in the same pieces
 * protobuf-c allocates (each message, string and array alone; arrays may have spare room), so
 * the result is freed with protobuf_c_message_free_unpacked, or by resetting the arena it came
 * from. The plans of one call take about 21 KiB of stack.
 *
 * What the reader does not take (MW_PB_READ_NOT_MINE) is left to protobuf_c_message_unpack:
 * schemas with required, bytes or proto3 fields, a oneof in a message type that can be merged
 * (an optional message field's), field numbers above 63, more than 32 message types or 512
 * planned field numbers in all, nesting deeper than MW_PB_READ_MAX_DEPTH. telemetry.proto has
 * none of these.
 */
#ifndef MW_COMMON_PB_READ_H
#define MW_COMMON_PB_READ_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#define MW_PB_READ_NOT_MINE 1 /* a schema or input this reader leaves to protobuf-c */
#define MW_PB_READ_MAX_DEPTH 32

/*
 * Read data[0..len) as a message of `desc`. Returns 0 with *out set (owned by the caller,
 * from `allocator`); MW_EPARSE where protobuf_c_message_unpack returns NULL for bad input;
 * MW_ENOMEM when the allocator fails; MW_PB_READ_NOT_MINE when the caller must decode it with
 * protobuf_c_message_unpack. *out is NULL unless 0 is returned; nothing is left allocated
 * (from an arena, what was taken stays until its reset).
 */
int mw_pb_read(const ProtobufCMessageDescriptor *desc, ProtobufCAllocator *allocator,
               const void *data, size_t len, ProtobufCMessage **out);

/*
 * Whether messages `a` and `b` (either may be NULL) hold the same: every field by its
 * descriptor (presence, oneof case, scalars bit for bit, strings as C strings, repeated fields
 * element by element, messages recursively) and the same unknown fields. For the tests that
 * hold mw_pb_read to protobuf-c.
 */
bool mw_pb_equal(const ProtobufCMessage *a, const ProtobufCMessage *b);

#endif
