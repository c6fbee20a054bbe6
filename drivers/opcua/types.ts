// OPC UA built-in data types (Part 6, 5.1.2): names by their ids in namespace 0.

/** Built-in data type names by their ids in namespace 0 (Part 6, 5.1.2), for comments. */
export const BUILTIN: Record<number, string> = {
  1: 'Boolean',
  2: 'SByte',
  3: 'Byte',
  4: 'Int16',
  5: 'UInt16',
  6: 'Int32',
  7: 'UInt32',
  8: 'Int64',
  9: 'UInt64',
  10: 'Float',
  11: 'Double',
  12: 'String',
  13: 'DateTime',
  14: 'Guid',
  15: 'ByteString',
  17: 'NodeId',
  19: 'StatusCode',
  20: 'QualifiedName',
  21: 'LocalizedText',
};
