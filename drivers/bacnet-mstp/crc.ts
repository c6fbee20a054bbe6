// The two MS/TP checksums of ASHRAE 135 Clause 9 (worked examples in Annex G), computed one octet at
// a time like the standard describes them.
//
// Header CRC: polynomial x^8 + x^7 + 1, register preset to 0xFF, run over frame type, destination,
// source and the two length octets; the ones complement of the register is sent. A receiver that
// runs the register over those five octets and the received CRC ends with 0x55.
//
// Data CRC: CRC-CCITT (x^16 + x^12 + x^5 + 1) in reflected form, register preset to 0xFFFF; the ones
// complement is sent least significant octet first. Over data plus both CRC octets the register
// ends with 0xF0B8.

export const HEADER_CRC_RESIDUE = 0x55;
export const DATA_CRC_RESIDUE = 0xf0b8;

/** One step of the header CRC: `crc` is the register before the octet, the result the register after. */
export function headerCrcStep(octet: number, crc: number): number {
  let c = (crc ^ octet) & 0xff;
  // Multiply by the polynomial: XOR in the register shifted by 1…7 positions (x^8 + x^7 + 1 folded).
  c = c ^ (c << 1) ^ (c << 2) ^ (c << 3) ^ (c << 4) ^ (c << 5) ^ (c << 6) ^ (c << 7);
  return ((c & 0xfe) ^ ((c >> 8) & 1)) & 0xff;
}

/** One step of the data CRC (16-bit register). */
export function dataCrcStep(octet: number, crc: number): number {
  const low = (crc & 0xff) ^ octet;
  return ((crc >> 8) ^ (low << 8) ^ (low << 3) ^ (low << 12) ^ (low >> 4) ^ (low & 0x0f) ^ ((low & 0x0f) << 7)) & 0xffff;
}

/** The octet to send after the five header octets. */
export function headerCrc(header: Uint8Array): number {
  let crc = 0xff;
  for (const b of header) crc = headerCrcStep(b, crc);
  return ~crc & 0xff;
}

/** The 16-bit value to send after the data (low octet first). */
export function dataCrc(data: Uint8Array): number {
  let crc = 0xffff;
  for (const b of data) crc = dataCrcStep(b, crc);
  return ~crc & 0xffff;
}
